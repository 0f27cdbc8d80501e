// Drives the published v1 client, @laserfiche/lf-repository-api-client@1.1.12, against a running sandbox
// started with `--profile sdk` (the published v1 client needs starts and a completed copy to answer 201).
//
//   node --import ./register.mjs v1.mjs http://127.0.0.1:8080 [r-sandbox] [admin] [admin]
//
// Everything it creates goes into one folder with a unique name under the root, deleted at the end.
import {
  CopyAsyncRequest,
  DeleteEntryWithAuditReason,
  PostEntryChildrenEntryType,
  PostEntryChildrenRequest,
  PostEntryWithEdocMetadataRequest,
  RepositoryApiClient,
} from '@laserfiche/lf-repository-api-client';
import {
  Checks,
  assert,
  assertServerProblem,
  eq,
  expectApiException,
  fileParameter,
  need,
  parseArgs,
  requests,
  signIns,
  sleep,
  tapFetch,
  uniqueName,
  withHeaders,
} from './lib.mjs';

const { baseUrl, repositoryId: repoId, username, password } = parseArgs();
tapFetch();

const SOURCE_FILES = 20; // entries in the folder a paced copy walks through
const PACE_MS = '250'; // Sandbox-Pace-Ms on the paced copy: 20 files take 5 s or more
const ENDED = new Set(['Completed', 'Failed', 'Cancelled']);

const client = RepositoryApiClient.createFromUsernamePassword(repoId, username, password, baseUrl);
const { entriesClient, tasksClient } = client;
const checks = new Checks(`v1 client @laserfiche/lf-repository-api-client@1.1.12 against ${baseUrl} (${repoId})`);

/** Poll Tasks/{token} until the operation has ended; returns the last OperationProgress. */
async function waitForOperation(operationToken, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const progress = await tasksClient.getOperationStatusAndProgress({ repoId, operationToken });
    assert(progress, 'Tasks/{token} answered a status the client does not parse (the client returned null)');
    if (ENDED.has(progress.status)) return progress;
    assert(Date.now() < deadline, `operation still ${progress.status} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function children(entryId) {
  const listing = await entriesClient.getEntryListing({ repoId, entryId });
  return listing.value;
}

function createFolder(parentId, name, autoRename) {
  const request = new PostEntryChildrenRequest({ entryType: PostEntryChildrenEntryType.Folder, name });
  return entriesClient.createOrCopyEntry({ repoId, entryId: parentId, request, autoRename });
}

// what the checks share
let root;
let work; // the run's own folder under the root
let source; // a folder of SOURCE_FILES small documents
let copyToken; // a completed copy
let copied; // the entry that copy made

await checks.run('sign-in is lazy: no request before the first call, then one Token request', async () => {
  eq(requests.length, 0, 'requests sent by creating the client');
  root = await entriesClient.getEntry({ repoId, entryId: 1 });
  eq(signIns().length, 1, 'Token requests');
  eq(requests[0].url, `${baseUrl}/v1/Repositories/${encodeURIComponent(repoId)}/Token`, 'first request');
  assert(requests[1]?.auth === true, 'the request after sign-in carries no Authorization header');
});

await checks.run('get root entry 1', async () => {
  need(root, 'the root entry');
  eq(root.id, 1, 'id');
  eq(root.entryType, 'Folder', 'entryType');
  eq(root.fullPath, '\\', 'fullPath');
  eq(root.constructor.name, 'Folder', 'client class');
});

await checks.run('list the root with paging: maxpagesize=1, getEntryListingNextLink', async () => {
  const first = await entriesClient.getEntryListing({ repoId, entryId: 1, prefer: 'maxpagesize=1' });
  eq(first.value.length, 1, 'items on the first page');
  assert(typeof first.odataNextLink === 'string', `no @odata.nextLink: ${first.odataNextLink}`);
  assert(first.odataNextLink.startsWith('http'), `@odata.nextLink is not absolute: ${first.odataNextLink}`);
  const second = await entriesClient.getEntryListingNextLink({ nextLink: first.odataNextLink, maxPageSize: 1 });
  eq(second.value.length, 1, 'items on the second page (the root has at least 2 children)');
  assert(second.value[0].id !== first.value[0].id, 'the second page repeats the first');
});

await checks.run('list the root with getEntryListingForEach (maxPageSize 1) = the unpaged listing', async () => {
  const all = await children(1);
  assert(all.length >= 2, `the root has ${all.length} children, the checks need at least 2`);
  const seen = [];
  let pages = 0;
  await entriesClient.getEntryListingForEach({
    repoId,
    entryId: 1,
    maxPageSize: 1,
    callback: async (page) => {
      pages++;
      assert(page.value.length <= 1, `page ${pages} has ${page.value.length} items`);
      seen.push(...page.value.map((e) => e.id));
      return pages < 1000;
    },
  });
  eq(seen.join(','), all.map((e) => e.id).join(','), 'ids over all pages');
});

await checks.run('create a folder (createOrCopyEntry, 201 Folder)', async () => {
  const name = uniqueName('v1 compat');
  work = await createFolder(1, name, true);
  eq(work.entryType, 'Folder', 'entryType');
  eq(work.parentId, 1, 'parentId');
  eq(work.name, name, 'name');
  assert(work.id > 1, `id ${work.id}`);
});

await checks.run('create a shortcut ({entryType: Shortcut, name, targetId})', async () => {
  need(work, 'the work folder');
  const request = new PostEntryChildrenRequest({
    entryType: PostEntryChildrenEntryType.Shortcut,
    name: 'shortcut to work',
    targetId: work.id,
  });
  const shortcut = await entriesClient.createOrCopyEntry({ repoId, entryId: work.id, request });
  eq(shortcut.entryType, 'Shortcut', 'entryType');
  eq(shortcut.constructor.name, 'Shortcut', 'client class');
  eq(shortcut.parentId, work.id, 'parentId');
  eq(shortcut.targetId, work.id, 'targetId');
  eq(shortcut.targetType, 'Folder', 'targetType');
  const listed = (await children(work.id)).find((e) => e.id === shortcut.id);
  eq(listed?.entryType, 'Shortcut', 'entryType of the shortcut in its folder listing');
});

await checks.run(`import ${SOURCE_FILES} small documents (importDocument) into a source folder`, async () => {
  need(work, 'the work folder');
  source = await createFolder(work.id, 'source');
  for (let i = 0; i < SOURCE_FILES; i++) {
    const fileName = `file ${String(i).padStart(2, '0')}.txt`;
    const result = await entriesClient.importDocument({
      repoId,
      parentEntryId: source.id,
      fileName,
      electronicDocument: fileParameter(`compat file ${i}\n`, fileName),
      request: new PostEntryWithEdocMetadataRequest(),
    });
    const entryId = result?.operations?.entryCreate?.entryId;
    assert(entryId > 0, `import of ${fileName} gave no entryId: ${JSON.stringify(result)}`);
  }
  eq((await children(source.id)).length, SOURCE_FILES, 'documents in the source folder');
});

await checks.run('copy as a long operation (copyEntry -> token), poll until Completed, read the copy', async () => {
  need(source, 'the source folder');
  const name = 'copy of source';
  const request = new CopyAsyncRequest({ sourceId: source.id, name });
  const accepted = await entriesClient.copyEntry({ repoId, entryId: work.id, request, autoRename: true });
  assert(accepted?.token, `copyEntry answered no token: ${JSON.stringify(accepted)}`);
  const progress = await waitForOperation(accepted.token);
  eq(progress.status, 'Completed', 'status');
  eq(progress.percentComplete, 100, 'percentComplete');
  eq(progress.operationType, 'CopyEntry', 'operationType');
  assert(progress.entryId > 0, `no entryId in the completed progress: ${JSON.stringify(progress)}`);
  copyToken = accepted.token;
  copied = await entriesClient.getEntry({ repoId, entryId: progress.entryId });
  eq(copied.name, name, 'name of the copy');
  eq(copied.parentId, work.id, 'parentId of the copy');
  eq(copied.entryType, 'Folder', 'entryType of the copy');
  eq((await children(copied.id)).length, SOURCE_FILES, 'documents in the copy');
});

await checks.run('cancel a paced copy (Sandbox-Pace-Ms): cancelOperation 204, then Cancelled', async () => {
  need(source, 'the source folder');
  const request = new CopyAsyncRequest({ sourceId: source.id, name: 'cancelled copy' });
  const accepted = await withHeaders(client, { 'Sandbox-Pace-Ms': PACE_MS }, () =>
    entriesClient.copyEntry({ repoId, entryId: work.id, request, autoRename: true }),
  );
  assert(accepted?.token, `copyEntry answered no token: ${JSON.stringify(accepted)}`);
  const before = await tasksClient.getOperationStatusAndProgress({ repoId, operationToken: accepted.token });
  assert(!ENDED.has(before.status), `the paced copy had already ended (${before.status}) before the cancel`);
  await tasksClient.cancelOperation({ repoId, operationToken: accepted.token }); // 204 resolves to undefined
  eq(requests.at(-1).status, 204, 'status of DELETE Tasks/{token}');
  const after = await waitForOperation(accepted.token);
  eq(after.status, 'Cancelled', 'status after the cancel');
  eq(requests.filter((r) => r.pace).length, 1, 'requests that carried Sandbox-Pace-Ms (only the start)');
});

await checks.run('cancelOperation of an ended operation: 400 "Cannot cancel ended operation."', async () => {
  need(copyToken, 'a completed copy');
  const err = await expectApiException(tasksClient.cancelOperation({ repoId, operationToken: copyToken }), 400);
  eq(err.problemDetails?.title, 'Cannot cancel ended operation.', 'problemDetails.title');
  eq(err.message, 'Cannot cancel ended operation.', 'message');
  const progress = await tasksClient.getOperationStatusAndProgress({ repoId, operationToken: copyToken });
  eq(progress.status, 'Completed', 'status of the operation after the refused cancel');
});

await checks.run('delete (deleteEntryInfo -> token), poll until Completed, the entry is then 404', async () => {
  need(copied, 'the copied folder');
  const accepted = await entriesClient.deleteEntryInfo({
    repoId,
    entryId: copied.id,
    request: new DeleteEntryWithAuditReason(),
  });
  assert(accepted?.token, `deleteEntryInfo answered no token: ${JSON.stringify(accepted)}`);
  const progress = await waitForOperation(accepted.token);
  eq(progress.status, 'Completed', 'status');
  eq(progress.operationType, 'DeleteEntry', 'operationType');
  await expectApiException(entriesClient.getEntry({ repoId, entryId: copied.id }), 404);
});

await checks.run('unknown entry: 404 ApiException with the server\'s ProblemDetails', async () => {
  const err = await expectApiException(entriesClient.getEntry({ repoId, entryId: 2_000_000_000 }), 404);
  assertServerProblem(err, 404);
  assert(err.problemDetails.operationId, 'problemDetails.operationId is missing');
});

await checks.run('name conflict without autoRename: 409', async () => {
  need(work, 'the work folder');
  await createFolder(work.id, 'twice');
  const err = await expectApiException(createFolder(work.id, 'twice'), 409);
  assertServerProblem(err, 409);
});

await checks.run('wrong password: the sign-in fails with the server\'s 401 problem', async () => {
  const since = requests.length;
  const wrong = RepositoryApiClient.createFromUsernamePassword(repoId, username, `${password}-wrong`, baseUrl);
  const err = await expectApiException(wrong.entriesClient.getEntry({ repoId, entryId: 1 }), 401);
  assert(err.problemDetails?.title, 'no problem title');
  const sent = requests.slice(since);
  eq(sent.length, 1, 'requests sent (only the Token request)');
  eq(signIns(since).length, 1, 'Token requests');
});

await checks.run('delete the work folder without a request body (cleanup)', async () => {
  need(work, 'the work folder');
  // no request: the client sends a DELETE with Content-Type application/json and no body
  const accepted = await entriesClient.deleteEntryInfo({ repoId, entryId: work.id });
  assert(accepted?.token, `deleteEntryInfo answered no token: ${JSON.stringify(accepted)}`);
  const progress = await waitForOperation(accepted.token);
  eq(progress.status, 'Completed', 'status');
  await expectApiException(entriesClient.getEntry({ repoId, entryId: work.id }), 404);
});

await checks.run('one sign-in for the whole run (no 401 made the client sign in again)', async () => {
  const mine = requests.filter((r) => r.auth);
  const unauthorized = mine.filter((r) => r.status === 401);
  eq(unauthorized.length, 0, 'requests answered 401');
  // the wrong-password client signed in once too
  eq(signIns().length, 2, 'Token requests (this client and the wrong-password one)');
});

checks.finish();

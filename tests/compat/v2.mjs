// Drives the published v2 client, @laserfiche/lf-repository-api-client-v2@1.3.0, against a running sandbox
// (any --profile: the profiles change v1 only).
//
//   node --import ./register.mjs v2.mjs http://127.0.0.1:8080 [r-sandbox] [admin] [admin]
//
// Everything it creates goes into one folder with a unique name under the root, deleted at the end.
import {
  CopyEntryRequest,
  CreateEntryRequest,
  CreateEntryRequestEntryType,
  ImportEntryRequest,
  RepositoriesClient,
  RepositoryApiClient,
  StartCopyEntryRequest,
  StartDeleteEntryRequest,
  UpdateEntryRequest,
} from '@laserfiche/lf-repository-api-client-v2';
import {
  Checks,
  answered,
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

const { baseUrl, repositoryId, username, password } = parseArgs();
tapFetch();

const SOURCE_FILES = 20; // entries in the folder a paced copy walks through
const PACE_MS = '250'; // Sandbox-Pace-Ms on the paced copy: 20 files take 5 s or more
const ENDED = new Set(['Completed', 'Failed', 'Cancelled']);
const CONTENT = 'integration test content'; // 24 bytes, imported as test.pdf as the vendor's tests do

const client = RepositoryApiClient.createFromUsernamePassword(repositoryId, username, password, baseUrl);
const { entriesClient, tasksClient } = client;
const checks = new Checks(
  `v2 client @laserfiche/lf-repository-api-client-v2@1.3.0 against ${baseUrl} (${repositoryId})`,
);

/**
 * List the tasks until every one has ended (GET Tasks long-polls: it answers when one of them ends).
 * Returns the TaskProgress of each id, in the order of `taskIds`.
 */
async function waitForTasks(taskIds, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const listed = answered(await tasksClient.listTasks({ repositoryId, taskIds }), 'listTasks');
    const byId = new Map(listed.value.map((t) => [t.id, t]));
    const progress = taskIds.map((id) => byId.get(id));
    const missing = taskIds.filter((id, i) => !progress[i]);
    assert(missing.length === 0, `listTasks left out ${missing.join(', ')}`);
    if (progress.every((t) => ENDED.has(t.status))) return progress;
    const states = progress.map((t) => `${t.id}: ${t.status} ${t.percentComplete}%`).join(', ');
    assert(Date.now() < deadline, `tasks still running after ${timeoutMs} ms (${states})`);
    await sleep(100);
  }
}

async function waitForTask(taskId, timeoutMs) {
  return (await waitForTasks([taskId], timeoutMs))[0];
}

/** How many GET Tasks requests were sent since `since` (an index into the request log). */
function listTasksRequests(since) {
  return requests.slice(since).filter((r) => r.method === 'GET' && /\/Tasks\?/.test(r.url)).length;
}

async function createFolder(parentId, name, autoRename = false) {
  const request = new CreateEntryRequest({ entryType: CreateEntryRequestEntryType.Folder, name, autoRename });
  return answered(await entriesClient.createEntry({ repositoryId, entryId: parentId, request }), 'createEntry');
}

async function getEntry(entryId, options = {}) {
  return answered(await entriesClient.getEntry({ repositoryId, entryId, ...options }), 'getEntry');
}

/** Every child of a folder, through listEntriesForEach. */
async function allChildren(entryId, maxPageSize = 100) {
  const items = [];
  let pages = 0;
  await entriesClient.listEntriesForEach({
    repositoryId,
    entryId,
    maxPageSize,
    callback: async (page) => {
      pages++;
      assert(Array.isArray(page.value), `page ${pages} has no value array`);
      assert(page.value.length <= maxPageSize, `page ${pages} has ${page.value.length} items`);
      items.push(...page.value);
      return pages < 1000;
    },
  });
  return items;
}

/**
 * Create an entry at a folder path below `parentId`. 1.3.0's createEntry has no `autoCreateFolderPath` query
 * parameter and its CreateEntryRequest has no `folderPath` (both came with 1.4.x), so this sends the request
 * 1.4.x sends, through this client's own http handler (sign-in, headers, retry) and response processing.
 */
async function createEntryAtPath(parentId, body, autoCreateFolderPath) {
  let url = `${baseUrl}/v2/Repositories/${encodeURIComponent(repositoryId)}/Entries/${parentId}/Folder/Children`;
  if (autoCreateFolderPath !== undefined) url += `?autoCreateFolderPath=${autoCreateFolderPath}`;
  const response = await entriesClient.http.fetch(url, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
  });
  return answered(await entriesClient.processCreateEntry(response), 'createEntry (folderPath)');
}

/** The entry at `fullPath`, or undefined when the server answers 404. */
async function entryAtPath(fullPath) {
  try {
    const found = answered(await entriesClient.getEntryByPath({ repositoryId, fullPath }), 'getEntryByPath');
    return found.entry;
  } catch (err) {
    if (err?.status === 404) return undefined;
    throw err;
  }
}

// what the checks share
let work; // the run's own folder under the root
let shortcut;
let source; // a folder of SOURCE_FILES small documents
let completedCopyTaskId;
let moveParent;
let moveChild;

await checks.run('sign-in is lazy: no request before the first call, then one v1 Token request', async () => {
  eq(requests.length, 0, 'requests sent by creating the client');
  await getEntry(1);
  eq(signIns().length, 1, 'Token requests');
  eq(requests[0].url, `${baseUrl}/v1/Repositories/${encodeURIComponent(repositoryId)}/Token`, 'first request');
  assert(requests[1]?.auth === true, 'the request after sign-in carries no Authorization header');
});

function checkRepositoryList(list) {
  assert(Array.isArray(list?.value), `no value array: ${JSON.stringify(list)}`);
  for (const repo of list.value) {
    const url = repo.webClientUrl;
    assert(url?.includes(repo.id), `webClientUrl ${url} does not contain the id ${repo.id}`);
  }
  const ids = list.value.map((r) => r.id);
  assert(
    ids.some((id) => id.toLowerCase() === repositoryId.toLowerCase()),
    `${repositoryId} not in ${JSON.stringify(ids)}`,
  );
}

await checks.run('listRepositories with the client (200, lists the repository)', async () => {
  checkRepositoryList(answered(await client.repositoriesClient.listRepositories({}), 'listRepositories'));
  assert(requests.at(-1).auth, 'the client sent no Authorization header');
});

await checks.run('listSelfHostedRepositories: a bare fetch without Authorization (200, lists it)', async () => {
  const list = await RepositoriesClient.listSelfHostedRepositories({ baseUrl });
  eq(requests.at(-1).auth, false, 'Authorization header sent');
  eq(requests.at(-1).status, 200, 'status');
  checkRepositoryList(list);
});

await checks.run('getEntry root with includeChildInfo: counts consistent with the listing', async () => {
  const root = await getEntry(1, { includeChildInfo: true });
  eq(root.entryType, 'Folder', 'entryType');
  const info = root.childInfo;
  assert(info, 'no childInfo');
  const sum = (info.folderCount ?? 0) + (info.documentCount ?? 0) + (info.shortcutCount ?? 0);
  eq(info.childCount, sum, 'childCount against folderCount + documentCount + shortcutCount');
  eq(info.hasChildren, info.childCount > 0, 'hasChildren');
  assert(info.childCount > 0, 'the root has no children');
  const listed = await allChildren(1);
  const count = (type) => listed.filter((e) => e.entryType === type).length;
  eq(info.childCount, listed.length, 'childCount against the listing');
  eq(info.folderCount ?? 0, count('Folder'), 'folderCount against the listing');
  eq(info.documentCount ?? 0, count('Document'), 'documentCount against the listing');
  eq(info.shortcutCount ?? 0, count('Shortcut'), 'shortcutCount against the listing');
});

await checks.run('getEntry root without includeChildInfo: no childInfo', async () => {
  const root = await getEntry(1);
  eq(root.id, 1, 'id');
  eq(root.childInfo, undefined, 'childInfo');
});

await checks.run('getEntryByPath \\ (fallbackToClosestAncestor false): the root, no ancestorEntry', async () => {
  const found = answered(
    await entriesClient.getEntryByPath({ repositoryId, fullPath: '\\', fallbackToClosestAncestor: false }),
    'getEntryByPath',
  );
  eq(found.entry?.id, 1, 'entry.id');
  eq(found.entry?.fullPath, '\\', 'entry.fullPath');
  eq(found.entry?.entryType, 'Folder', 'entry.entryType');
  eq(found.ancestorEntry, undefined, 'ancestorEntry');
});

await checks.run('getEntryByPath of a missing path with fallbackToClosestAncestor: the root as ancestor', async () => {
  const fullPath = `\\${uniqueName('Non Existing Path')}`;
  const found = answered(
    await entriesClient.getEntryByPath({ repositoryId, fullPath, fallbackToClosestAncestor: true }),
    'getEntryByPath',
  );
  eq(found.entry, undefined, 'entry');
  eq(found.ancestorEntry?.id, 1, 'ancestorEntry.id');
  eq(found.ancestorEntry?.fullPath, '\\', 'ancestorEntry.fullPath');
  eq(found.ancestorEntry?.entryType, 'Folder', 'ancestorEntry.entryType');
});

await checks.run('createEntry folder (201, parentId)', async () => {
  const name = uniqueName('v2 compat');
  work = await createFolder(1, name, true);
  eq(work.entryType, 'Folder', 'entryType');
  eq(work.constructor.name, 'Folder', 'client class');
  eq(work.parentId, 1, 'parentId');
  eq(work.name, name, 'name');
});

await checks.run('createEntry shortcut (entryType Shortcut, targetId)', async () => {
  need(work, 'the work folder');
  const request = new CreateEntryRequest({
    entryType: CreateEntryRequestEntryType.Shortcut,
    name: 'shortcut to work',
    targetId: work.id,
    autoRename: true,
  });
  shortcut = answered(await entriesClient.createEntry({ repositoryId, entryId: work.id, request }), 'createEntry');
  eq(shortcut.entryType, 'Shortcut', 'entryType');
  eq(shortcut.constructor.name, 'Shortcut', 'client class');
  eq(shortcut.parentId, work.id, 'parentId');
  eq(shortcut.targetId, work.id, 'targetId');
  eq(shortcut.targetType, 'Folder', 'targetType');
});

await checks.run('createEntry with folderPath A/B and autoCreateFolderPath=true: parent is R\\A\\B', async () => {
  need(work, 'the work folder');
  const r = await createFolder(work.id, 'folder path root');
  const leaf = await createEntryAtPath(
    r.id,
    { name: 'Leaf', autoRename: false, entryType: 'Folder', folderPath: 'A/B' },
    true,
  );
  eq(leaf.entryType, 'Folder', 'entryType');
  const b = await entryAtPath(`${r.fullPath}\\A\\B`);
  assert(b, `${r.fullPath}\\A\\B does not exist`);
  eq(leaf.parentId, b.id, 'parentId (the id of R\\A\\B)');
  eq((await entryAtPath(`${r.fullPath}\\A\\B\\Leaf`))?.id, leaf.id, 'id of R\\A\\B\\Leaf');
});

await checks.run('createEntry with a missing folderPath, autoCreateFolderPath false or absent: 404', async () => {
  need(work, 'the work folder');
  const r = await createFolder(work.id, 'missing path root');
  const body = { name: 'Leaf', autoRename: false, entryType: 'Folder', folderPath: 'X/Y' };
  await expectApiException(createEntryAtPath(r.id, body, false), 404);
  await expectApiException(createEntryAtPath(r.id, body, undefined), 404);
  eq(await entryAtPath(`${r.fullPath}\\X`), undefined, 'R\\X');
  eq((await allChildren(r.id)).length, 0, 'children of R');
});

await checks.run('createEntry with folderPath A/../B: 400', async () => {
  need(work, 'the work folder');
  const r = await createFolder(work.id, 'dot dot root');
  const body = { name: 'Leaf', autoRename: false, entryType: 'Folder', folderPath: 'A/../B' };
  const err = await expectApiException(createEntryAtPath(r.id, body, true), 400);
  assertServerProblem(err, 400);
  eq((await allChildren(r.id)).length, 0, 'children of R');
});

await checks.run('listEntries with maxpagesize=1, then listEntriesNextLink', async () => {
  const first = answered(
    await entriesClient.listEntries({ repositoryId, entryId: 1, prefer: 'maxpagesize=1' }),
    'listEntries',
  );
  eq(first.value.length, 1, 'items on the first page');
  assert(typeof first.odataNextLink === 'string', `no @odata.nextLink: ${first.odataNextLink}`);
  assert(first.odataNextLink.startsWith('http'), `@odata.nextLink is not absolute: ${first.odataNextLink}`);
  const second = await entriesClient.listEntriesNextLink({ nextLink: first.odataNextLink, maxPageSize: 1 });
  eq(second.value.length, 1, 'items on the second page (the root has at least 2 children)');
  assert(second.value[0].id !== first.value[0].id, 'the second page repeats the first');
  assert(second.value.every((e) => e.rowNumber !== undefined), 'listed entries carry no rowNumber');
});

await checks.run('listEntriesForEach (maxPageSize 1) = the unpaged listing', async () => {
  const unpaged = answered(await entriesClient.listEntries({ repositoryId, entryId: 1 }), 'listEntries');
  assert(!unpaged.odataNextLink, 'the unpaged listing of the root has a nextLink');
  const paged = await allChildren(1, 1);
  eq(paged.map((e) => e.id).join(','), unpaged.value.map((e) => e.id).join(','), 'ids over all pages');
});

await checks.run('copyEntry (synchronous) of a shortcut: 201 Shortcut to the same target', async () => {
  need(shortcut, 'the shortcut');
  const request = new CopyEntryRequest({ sourceId: shortcut.id, name: 'copied shortcut', autoRename: true });
  const copy = answered(await entriesClient.copyEntry({ repositoryId, entryId: work.id, request }), 'copyEntry');
  eq(copy.entryType, 'Shortcut', 'entryType');
  eq(copy.parentId, work.id, 'parentId');
  eq(copy.targetId, shortcut.targetId, 'targetId');
  assert(copy.id !== shortcut.id, 'the copy has the id of its source');
});

await checks.run(`importEntry ${SOURCE_FILES} small documents into a source folder`, async () => {
  need(work, 'the work folder');
  source = await createFolder(work.id, 'source');
  for (let i = 0; i < SOURCE_FILES; i++) {
    const fileName = `file ${String(i).padStart(2, '0')}.txt`;
    const doc = answered(
      await entriesClient.importEntry({
        repositoryId,
        entryId: source.id,
        file: fileParameter(`compat file ${i}\n`, fileName),
        request: new ImportEntryRequest({ name: fileName }),
      }),
      'importEntry',
    );
    eq(doc.entryType, 'Document', `entryType of ${fileName}`);
  }
  eq((await allChildren(source.id)).length, SOURCE_FILES, 'documents in the source folder');
});

await checks.run('startCopyEntry -> taskId; listTasks long-polls to Completed with result.entryId', async () => {
  need(source, 'the source folder');
  const name = 'copy of source';
  const request = new StartCopyEntryRequest({ sourceId: source.id, name, autoRename: true });
  const started = answered(
    await entriesClient.startCopyEntry({ repositoryId, entryId: work.id, request }),
    'startCopyEntry',
  );
  assert(typeof started.taskId === 'string' && started.taskId, `no taskId: ${JSON.stringify(started)}`);
  const since = requests.length;
  const task = await waitForTask(started.taskId);
  eq(task.status, 'Completed', 'status');
  eq(listTasksRequests(since), 1, 'listTasks requests (the first one is held until the copy ends)');
  eq(task.taskType, 'CopyEntry', 'taskType');
  eq(task.percentComplete, 100, 'percentComplete');
  assert(task.result?.entryId > 0, `no result.entryId: ${JSON.stringify(task.result)}`);
  completedCopyTaskId = started.taskId;
  const copy = await getEntry(task.result.entryId);
  eq(copy.name, name, 'name of the copy');
  eq(copy.parentId, work.id, 'parentId of the copy');
  eq((await allChildren(copy.id)).length, SOURCE_FILES, 'documents in the copy');
});

await checks.run('cancel a paced startCopyEntry (Sandbox-Pace-Ms): cancelTasks true, then Cancelled', async () => {
  need(source, 'the source folder');
  const request = new StartCopyEntryRequest({ sourceId: source.id, name: 'cancelled copy', autoRename: true });
  const started = answered(
    await withHeaders(client, { 'Sandbox-Pace-Ms': PACE_MS }, () =>
      entriesClient.startCopyEntry({ repositoryId, entryId: work.id, request }),
    ),
    'startCopyEntry',
  );
  assert(started.taskId, `no taskId: ${JSON.stringify(started)}`);
  const cancelled = answered(
    await tasksClient.cancelTasks({ repositoryId, taskIds: [started.taskId] }),
    'cancelTasks',
  );
  eq(cancelled.value?.length, 1, 'results in the cancel answer');
  eq(cancelled.value[0].id, started.taskId, 'id');
  eq(cancelled.value[0].result, true, 'result (the task was running)');
  const task = await waitForTask(started.taskId);
  eq(task.status, 'Cancelled', 'status after the cancel');
  eq(requests.filter((r) => r.pace).length, 1, 'requests that carried Sandbox-Pace-Ms (only the start)');
});

await checks.run('cancelTasks of an ended copy: result false, still Completed', async () => {
  need(completedCopyTaskId, 'a completed copy task');
  const answer = answered(
    await tasksClient.cancelTasks({ repositoryId, taskIds: [completedCopyTaskId] }),
    'cancelTasks',
  );
  eq(answer.value?.length, 1, 'results in the cancel answer');
  eq(answer.value[0].id, completedCopyTaskId, 'id');
  eq(answer.value[0].result, false, 'result');
  eq((await waitForTask(completedCopyTaskId)).status, 'Completed', 'status after the refused cancel');
});

await checks.run('updateEntry: move and rename (200, new parentId and name)', async () => {
  need(work, 'the work folder');
  moveParent = await createFolder(work.id, 'move parent');
  moveChild = await createFolder(work.id, 'move child');
  const request = new UpdateEntryRequest({ parentId: moveParent.id, name: 'moved folder', autoRename: true });
  const moved = answered(
    await entriesClient.updateEntry({ repositoryId, entryId: moveChild.id, request }),
    'updateEntry',
  );
  eq(moved.id, moveChild.id, 'id');
  eq(moved.parentId, moveParent.id, 'parentId');
  eq(moved.name, 'moved folder', 'name');
});

let imported;
await checks.run('importEntry test.pdf (24 bytes, ImportEntryRequest {name, autoRename}) -> 201 Document', async () => {
  need(work, 'the work folder');
  const name = 'v2 compat EntryIntrospection';
  imported = answered(
    await entriesClient.importEntry({
      repositoryId,
      entryId: work.id,
      file: fileParameter(CONTENT, 'test.pdf', 'application/pdf'),
      request: new ImportEntryRequest({ name, autoRename: true }),
    }),
    'importEntry',
  );
  eq(imported.entryType, 'Document', 'entryType');
  eq(imported.constructor.name, 'Document', 'client class');
  eq(imported.parentId, work.id, 'parentId');
  eq(imported.name, name, 'name');
  eq(imported.electronicDocumentSize, Buffer.byteLength(CONTENT), 'electronicDocumentSize');
});

await checks.run('getEntry with includeTotalSize: totalDocumentSize >= electronicDocumentSize', async () => {
  need(imported, 'the imported document');
  const doc = await getEntry(imported.id, { includeTotalSize: true });
  assert(typeof doc.totalDocumentSize === 'number', `totalDocumentSize is ${JSON.stringify(doc.totalDocumentSize)}`);
  assert(
    doc.totalDocumentSize >= (doc.electronicDocumentSize ?? 0),
    `totalDocumentSize ${doc.totalDocumentSize} < electronicDocumentSize ${doc.electronicDocumentSize}`,
  );
});

await checks.run('getEntry without includeTotalSize: no totalDocumentSize member', async () => {
  need(imported, 'the imported document');
  const doc = await getEntry(imported.id);
  // the client keeps a null as null: only an absent member reads as undefined
  eq(doc.totalDocumentSize, undefined, 'totalDocumentSize');
});

await checks.run('importEntry of an empty file: ApiException 400 with a problemDetails', async () => {
  need(work, 'the work folder');
  const err = await expectApiException(
    entriesClient.importEntry({
      repositoryId,
      entryId: work.id,
      file: fileParameter('', 'empty.txt'),
      request: new ImportEntryRequest({ name: 'empty document', autoRename: true }),
    }),
    400,
  );
  assertServerProblem(err, 400);
});

await checks.run('startDeleteEntry of a parent, then at once of its moved child: both give a taskId', async () => {
  need(moveChild, 'the moved folder');
  const request = new StartDeleteEntryRequest();
  const parentTask = answered(
    await entriesClient.startDeleteEntry({ repositoryId, entryId: moveParent.id, request }),
    'startDeleteEntry (parent)',
  );
  const childTask = answered(
    await entriesClient.startDeleteEntry({ repositoryId, entryId: moveChild.id, request }),
    'startDeleteEntry (child)',
  );
  assert(parentTask.taskId && childTask.taskId, `taskIds ${parentTask.taskId}, ${childTask.taskId}`);
  const [parent, child] = await waitForTasks([parentTask.taskId, childTask.taskId]);
  eq(parent.status, 'Completed', 'status of the parent delete');
  eq(parent.taskType, 'DeleteEntry', 'taskType');
  assert(['Completed', 'Failed'].includes(child.status), `status of the child delete: ${child.status}`);
  await expectApiException(entriesClient.getEntry({ repositoryId, entryId: moveParent.id }), 404);
});

await checks.run('startTestTask (1 s, hasRedirectUri): one long poll to Completed with result.uri', async () => {
  const started = answered(
    await tasksClient.startTestTask({ repositoryId, operationTime: 1, hasRedirectUri: true }),
    'startTestTask',
  );
  assert(started.taskId, `no taskId: ${JSON.stringify(started)}`);
  const since = requests.length;
  const task = await waitForTask(started.taskId);
  eq(task.status, 'Completed', 'status');
  eq(listTasksRequests(since), 1, 'listTasks requests (the first one is held until the task ends)');
  eq(task.percentComplete, 100, 'percentComplete');
  assert(typeof task.result?.uri === 'string' && task.result.uri, `result.uri is ${JSON.stringify(task.result?.uri)}`);
});

await checks.run('startTestTask (hasError): Failed with an error', async () => {
  const started = answered(
    await tasksClient.startTestTask({ repositoryId, operationTime: 1, hasError: true }),
    'startTestTask',
  );
  const task = await waitForTask(started.taskId);
  eq(task.status, 'Failed', 'status');
  assert(task.errors?.length > 0, `no errors: ${JSON.stringify(task.errors)}`);
});

await checks.run('listEntries on repository fakeRepo: 404 with a problem that has no extensions member', async () => {
  answered(await entriesClient.listEntries({ repositoryId, entryId: 1 }), 'listEntries (the real repository)');
  const err = await expectApiException(entriesClient.listEntries({ repositoryId: 'fakeRepo', entryId: 1 }), 404);
  const pd = err.problemDetails;
  eq(pd?.status, 404, 'problemDetails.status');
  for (const key of ['title', 'type', 'instance', 'errorSource', 'traceId', 'operationId']) {
    assert(pd[key] !== undefined, `problemDetails.${key} is undefined`);
  }
  assert(!('extensions' in pd), `problemDetails has an extensions member: ${JSON.stringify(pd.extensions)}`);
});

await checks.run('unknown entry: 404 ApiException with the server\'s ProblemDetails', async () => {
  await getEntry(1); // the route answers for a known entry
  const err = await expectApiException(entriesClient.getEntry({ repositoryId, entryId: 2_000_000_000 }), 404);
  assertServerProblem(err, 404);
});

await checks.run('name conflict (autoRename false): 409', async () => {
  need(work, 'the work folder');
  await createFolder(work.id, 'twice');
  const err = await expectApiException(createFolder(work.id, 'twice'), 409);
  assertServerProblem(err, 409);
});

await checks.run('delete the work folder without a request body (cleanup)', async () => {
  need(work, 'the work folder');
  // no request: the client sends a DELETE with Content-Type application/json and no body
  const started = answered(
    await entriesClient.startDeleteEntry({ repositoryId, entryId: work.id }),
    'startDeleteEntry',
  );
  eq((await waitForTask(started.taskId)).status, 'Completed', 'status');
  await expectApiException(entriesClient.getEntry({ repositoryId, entryId: work.id }), 404);
});

await checks.run('one sign-in for the whole run (no 401 made the client sign in again)', async () => {
  eq(requests.filter((r) => r.auth && r.status === 401).length, 0, 'requests answered 401');
  eq(signIns().length, 1, 'Token requests');
});

checks.finish();

// Drives the published v2 client, @laserfiche/lf-repository-api-client-v2@1.3.0, against a running sandbox
// (any --profile: the profiles change v1 only).
//
//   node --import ./register.mjs v2.mjs http://127.0.0.1:8080 [r-sandbox] [admin] [admin]
//
// Everything it creates goes into one folder with a unique name under the root, deleted at the end. Its
// metadata checks read the sample repository's catalog and the metadata of its sample entries
// (\Invoices\2026\INV-0001.txt, \Contracts\Acme Corp\agreement.md) without changing them. Its last section drives
// v2's other long operations: searches (over documents it imports), an export and uploads in parts.
import { randomBytes } from 'node:crypto';
import {
  AuditEventType,
  CopyEntryRequest,
  CreateEntryRequest,
  CreateEntryRequestEntryType,
  CreateMultipartUploadUrlsRequest,
  ExportEntryRequestPart,
  FieldFormat,
  FieldToUpdate,
  FieldType,
  HitType,
  ImportEntryRequest,
  LinkToUpdate,
  RepositoriesClient,
  RepositoryApiClient,
  SearchEntryRequest,
  SetFieldsRequest,
  SetLinksRequest,
  SetTagsRequest,
  SetTemplateRequest,
  StartCopyEntryRequest,
  StartDeleteEntryRequest,
  StartExportEntryRequest,
  StartImportUploadedPartsRequest,
  StartSearchEntryRequest,
  TaskType,
  UpdateDocumentUploadedPartsRequest,
  UpdateEntryRequest,
} from '@laserfiche/lf-repository-api-client-v2';
import {
  CheckFailed,
  Checks,
  answered,
  assert,
  assertServerProblem,
  bodyBytes,
  collectForEach,
  collectNextLink,
  eq,
  expectApiException,
  fileParameter,
  md5Hex,
  need,
  parseArgs,
  requests,
  sameBytes,
  sameItems,
  short,
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

// --------------------------------------------------------------------------- metadata
// Definitions (fields, tags, links, templates), audit reasons and attributes; the sample's metadata; then
// values set and read back on entries in the work folder, as the vendor's PagingTestData, SetEntries,
// SetLinks and RemoveEntries tests do it (LF-V2-CLIENT.md 2.10-2.15, 2.17, 2.19, 2.22).

const { fieldDefinitionsClient, tagDefinitionsClient, linkDefinitionsClient, templateDefinitionsClient } = client;
const { auditReasonsClient, attributesClient } = client;
const INVOICE_PATH = '\\Invoices\\2026\\INV-0001.txt';
const AGREEMENT_PATH = '\\Contracts\\Acme Corp\\agreement.md';
const AMENDMENT_PATH = '\\Contracts\\Acme Corp\\amendment-1.md';

const byId = (item) => item.id;
const byName = (item) => item.name;

/** GET a v1 route with this client's token (the same sign-in serves both dialects); the parsed JSON body. */
async function v1Get(path) {
  const url = `${baseUrl}/v1/Repositories/${encodeURIComponent(repositoryId)}${path}`;
  const response = await entriesClient.http.fetch(url, { method: 'GET', headers: { Accept: 'application/json' } });
  eq(response.status, 200, `status of GET ${url}`);
  return response.json();
}

async function entryIdAt(fullPath) {
  const found = await entryAtPath(fullPath);
  assert(found, `${fullPath} does not exist (the sample repository?)`);
  return found.id;
}

/** The values of each field of a FieldCollectionResponse (or its value array), by field name. */
function fieldMap(fields) {
  return Object.fromEntries((fields.value ?? fields).map((f) => [f.name, f.values]));
}

/** The message and detail of an ApiException must name `what` (a field, a tag, ...). */
function assertNames(err, what) {
  const pd = err.problemDetails ?? {};
  const text = `${pd.title ?? ''} ${pd.detail ?? ''}`;
  const named = `title ${JSON.stringify(pd.title)}, detail ${JSON.stringify(pd.detail)}`;
  assert(text.includes(what), `the problem does not name ${what}: ${named}`);
}

// what the metadata checks share
let fieldDefinitions; // every field definition, unpaged
let stringFields; // the first 2 unconstrained String field definitions (PagingTestData)
let tagDefinitions;
let infoTags; // the first 2 tag definitions with isSecure false (PagingTestData)
let linkDefinitions;
let templates;
let optionalTemplate; // a template whose fields are all optional (RemoveEntries)
let deleteReason; // an audit reason of type DeleteEntry
let pagingFolder; // P of PagingTestData, with children C0 and C1
let pagingChildren;
let fieldsEntry; // a folder with one field set (SetEntries)

await checks.run('listFieldDefinitions: 2+ unconstrained String; getFieldDefinition by id', async () => {
  const list = answered(await fieldDefinitionsClient.listFieldDefinitions({ repositoryId }), 'listFieldDefinitions');
  assert(Array.isArray(list.value) && list.value.length >= 2, `field definitions: ${short(list.value)}`);
  assert(!list.odataNextLink, 'the unpaged listing has a nextLink');
  for (const d of list.value) {
    eq(d.constructor.name, 'FieldDefinition', 'client class');
    assert(Number.isInteger(d.id) && typeof d.name === 'string' && d.name, `id and name of ${short(d)}`);
    assert(Object.values(FieldType).includes(d.fieldType), `fieldType of ${d.name} (a FieldType): ${d.fieldType}`);
    assert(Object.values(FieldFormat).includes(d.format), `format of ${d.name} (a FieldFormat): ${d.format}`);
    assert(typeof d.isMultiValue === 'boolean', `isMultiValue of ${d.name}: ${d.isMultiValue}`);
  }
  fieldDefinitions = list.value;
  // PagingTestData: String, a falsy constraint, a length of at least 1
  const unconstrained = (d) => d.fieldType === 'String' && !d.constraint && (d.length ?? -1) >= 1;
  stringFields = list.value.filter(unconstrained).slice(0, 2);
  eq(stringFields.length, 2, 'unconstrained String field definitions (PagingTestData needs 2)');
  const list1 = list.value.find((d) => d.fieldType === 'List');
  assert(list1?.listValues?.length > 0, `no List field definition with listValues: ${short(list1)}`);
  const first = answered(
    await fieldDefinitionsClient.getFieldDefinition({ repositoryId, fieldId: list.value[0].id }),
    'getFieldDefinition',
  );
  eq(first.id, list.value[0].id, 'id');
  eq(first.name, list.value[0].name, 'name');
  eq(first.fieldType, list.value[0].fieldType, 'fieldType');
});

await checks.run('listFieldDefinitionsNextLink (maxpagesize 1) and ForEach (10): each definition once', async () => {
  need(fieldDefinitions, 'the field definitions');
  const c = fieldDefinitionsClient;
  const paged = await collectNextLink(
    (prefer) => c.listFieldDefinitions({ repositoryId, prefer }),
    (args) => c.listFieldDefinitionsNextLink(args),
    1,
  );
  sameItems(paged.items, fieldDefinitions, byId, 'NextLink (1)');
  eq(paged.pages, fieldDefinitions.length, 'pages of 1');
  const each = await collectForEach((args) => c.listFieldDefinitionsForEach(args), { repositoryId }, 10);
  sameItems(each.items, fieldDefinitions, byId, 'ForEach (10)');
});

await checks.run('listTagDefinitions: 2+ isSecure false, a secure one with a watermark; getTagDefinition', async () => {
  const list = answered(await tagDefinitionsClient.listTagDefinitions({ repositoryId }), 'listTagDefinitions');
  assert(Array.isArray(list.value) && list.value.length >= 2, `tag definitions: ${short(list.value)}`);
  tagDefinitions = list.value;
  // PagingTestData and SetEntries: isSecure exactly false, not an "Automatically select tags" one
  const informational = (t) => t.isSecure === false && !t.name.includes('Automatically select tags');
  infoTags = list.value.filter(informational).slice(0, 2);
  eq(infoTags.length, 2, 'tag definitions with isSecure false (PagingTestData needs 2)');
  const secure = list.value.find((t) => t.isSecure === true);
  assert(secure, 'no secure tag definition');
  const watermark = secure.watermark;
  assert(typeof watermark?.text === 'string' && watermark.text, `watermark of ${secure.name}: ${short(watermark)}`);
  const one = answered(
    await tagDefinitionsClient.getTagDefinition({ repositoryId, tagId: secure.id }),
    'getTagDefinition',
  );
  eq(one.id, secure.id, 'id');
  eq(one.name, secure.name, 'name');
  eq(one.isSecure, true, 'isSecure');
});

await checks.run('listTagDefinitionsNextLink (maxpagesize 1) and ForEach (10): each definition once', async () => {
  need(tagDefinitions, 'the tag definitions');
  const c = tagDefinitionsClient;
  const paged = await collectNextLink(
    (prefer) => c.listTagDefinitions({ repositoryId, prefer }),
    (args) => c.listTagDefinitionsNextLink(args),
    1,
  );
  sameItems(paged.items, tagDefinitions, byId, 'NextLink (1)');
  eq(paged.pages, tagDefinitions.length, 'pages of 1');
  const each = await collectForEach((args) => c.listTagDefinitionsForEach(args), { repositoryId }, 10);
  sameItems(each.items, tagDefinitions, byId, 'ForEach (10)');
});

await checks.run('listLinkDefinitions: 2+, one with id 1; getLinkDefinition(1)', async () => {
  const list = answered(await linkDefinitionsClient.listLinkDefinitions({ repositoryId }), 'listLinkDefinitions');
  assert(Array.isArray(list.value) && list.value.length >= 2, `link definitions: ${short(list.value)}`);
  linkDefinitions = list.value;
  const listed = list.value.find((d) => d.id === 1);
  assert(listed, `no link definition with id 1 (SetLinks needs it): ${short(list.value)}`);
  const one = answered(
    await linkDefinitionsClient.getLinkDefinition({ repositoryId, linkDefinitionId: 1 }),
    'getLinkDefinition',
  );
  eq(one.constructor.name, 'LinkDefinition', 'client class');
  eq(one.id, 1, 'id');
  for (const key of ['sourceLabel', 'targetLabel', 'description']) eq(one[key], listed[key], key);
  assert(one.sourceLabel && one.targetLabel, `labels: ${short(one)}`);
});

await checks.run('listLinkDefinitionsNextLink (maxpagesize 1) and ForEach (10): each definition once', async () => {
  need(linkDefinitions, 'the link definitions');
  const c = linkDefinitionsClient;
  const paged = await collectNextLink(
    (prefer) => c.listLinkDefinitions({ repositoryId, prefer }),
    (args) => c.listLinkDefinitionsNextLink(args),
    1,
  );
  sameItems(paged.items, linkDefinitions, byId, 'NextLink (1)');
  eq(paged.pages, linkDefinitions.length, 'pages of 1');
  const each = await collectForEach((args) => c.listLinkDefinitionsForEach(args), { repositoryId }, 10);
  sameItems(each.items, linkDefinitions, byId, 'ForEach (10)');
});

await checks.run('listTemplateDefinitions; ?templateName= the first: exactly it; getTemplateDefinition', async () => {
  const list = answered(
    await templateDefinitionsClient.listTemplateDefinitions({ repositoryId }),
    'listTemplateDefinitions',
  );
  assert(Array.isArray(list.value) && list.value.length >= 2, `template definitions: ${short(list.value)}`);
  templates = list.value;
  const first = list.value[0];
  eq(first.constructor.name, 'TemplateDefinition', 'client class');
  assert(Number.isInteger(first.fieldCount), `fieldCount of ${first.name}: ${first.fieldCount}`);
  assert(first.color && Number.isInteger(first.color.r), `color of ${first.name}: ${short(first.color)}`);
  const named = answered(
    await templateDefinitionsClient.listTemplateDefinitions({ repositoryId, templateName: first.name }),
    'listTemplateDefinitions (templateName)',
  );
  eq(named.value?.length, 1, `templates named ${first.name}`);
  eq(named.value[0].id, first.id, 'id of the template found by name');
  const one = answered(
    await templateDefinitionsClient.getTemplateDefinition({ repositoryId, templateId: first.id }),
    'getTemplateDefinition',
  );
  eq(one.id, first.id, 'id');
  eq(one.name, first.name, 'name');
  eq(one.fieldCount, first.fieldCount, 'fieldCount');
});

await checks.run('template field definitions by id and name: fieldCount each, an all-optional template', async () => {
  need(templates, 'the template definitions');
  const c = templateDefinitionsClient;
  for (const t of templates) {
    const byTemplateId = answered(
      await c.listTemplateFieldDefinitionsByTemplateId({ repositoryId, templateId: t.id }),
      'listTemplateFieldDefinitionsByTemplateId',
    );
    assert(Array.isArray(byTemplateId.value), `no value array for ${t.name}`);
    eq(byTemplateId.value.length, t.fieldCount, `field definitions of ${t.name} (its fieldCount)`);
    const byTemplateName = answered(
      await c.listTemplateFieldDefinitionsByTemplateName({ repositoryId, templateName: t.name }),
      'listTemplateFieldDefinitionsByTemplateName',
    );
    eq(byTemplateName.value.map(byId).join(','), byTemplateId.value.map(byId).join(','), `fields of ${t.name} by name`);
    for (const f of byTemplateId.value) {
      eq(f.constructor.name, 'TemplateFieldDefinition', 'client class');
      assert(typeof f.isRequired === 'boolean', `isRequired of ${t.name}.${f.name}: ${f.isRequired}`);
      assert(fieldDefinitions?.some((d) => d.id === f.id) ?? true, `${t.name}.${f.name} is not a field definition`);
    }
    // RemoveEntries and SetEntries take the first template with no required field
    if (!optionalTemplate && !byTemplateId.value.some((f) => f.isRequired === true)) {
      optionalTemplate = { ...t, fieldNames: byTemplateId.value.map(byName) };
    }
  }
  assert(optionalTemplate, 'no template whose fields are all optional (RemoveEntries needs one)');
});

await checks.run('template paging: NextLink (1), ForEach (10); template fields ForEach (1), NextLink (1)', async () => {
  need(templates, 'the template definitions');
  const c = templateDefinitionsClient;
  const paged = await collectNextLink(
    (prefer) => c.listTemplateDefinitions({ repositoryId, prefer }),
    (args) => c.listTemplateDefinitionsNextLink(args),
    1,
  );
  sameItems(paged.items, templates, byId, 'templates, NextLink (1)');
  const each = await collectForEach((args) => c.listTemplateDefinitionsForEach(args), { repositoryId }, 10);
  sameItems(each.items, templates, byId, 'templates, ForEach (10)');
  const t = templates.find((x) => x.fieldCount >= 2);
  assert(t, 'no template with 2 fields or more');
  const unpaged = (await c.listTemplateFieldDefinitionsByTemplateId({ repositoryId, templateId: t.id })).value;
  const fieldsEach = await collectForEach(
    (args) => c.listTemplateFieldDefinitionsByTemplateIdForEach(args),
    { repositoryId, templateId: t.id },
    1,
  );
  sameItems(fieldsEach.items, unpaged, byId, `fields of ${t.name} by id, ForEach (1)`);
  const fieldsPaged = await collectNextLink(
    (prefer) => c.listTemplateFieldDefinitionsByTemplateName({ repositoryId, templateName: t.name, prefer }),
    (args) => c.listTemplateFieldDefinitionsByTemplateNameNextLink(args),
    1,
  );
  sameItems(fieldsPaged.items, unpaged, byId, `fields of ${t.name} by name, NextLink (1)`);
  eq(fieldsPaged.pages, unpaged.length, 'pages of 1');
});

await checks.run('unknown field, tag, link and template definitions, unknown templateName: 404 problems', async () => {
  const missing = 999_999;
  const templateClient = templateDefinitionsClient;
  const calls = [
    ['getFieldDefinition', () => fieldDefinitionsClient.getFieldDefinition({ repositoryId, fieldId: missing })],
    ['getTagDefinition', () => tagDefinitionsClient.getTagDefinition({ repositoryId, tagId: missing })],
    ['getLinkDefinition', () => linkDefinitionsClient.getLinkDefinition({ repositoryId, linkDefinitionId: missing })],
    ['getTemplateDefinition', () => templateClient.getTemplateDefinition({ repositoryId, templateId: missing })],
    [
      'listTemplateFieldDefinitionsByTemplateName',
      () =>
        templateClient.listTemplateFieldDefinitionsByTemplateName({ repositoryId, templateName: 'No Such Template' }),
    ],
  ];
  for (const [name, call] of calls) {
    try {
      assertServerProblem(await expectApiException(call(), 404), 404);
    } catch (err) {
      throw new CheckFailed(`${name}: ${err.message}`);
    }
  }
});

await checks.run('listAuditReasons: DeleteEntry and ExportDocument reasons {id, name, auditEventType}', async () => {
  const list = answered(await auditReasonsClient.listAuditReasons({ repositoryId }), 'listAuditReasons');
  assert(Array.isArray(list.value), `no value array: ${short(list)}`);
  for (const r of list.value) {
    assert(Number.isInteger(r.id) && r.name, `id and name of ${short(r)}`);
    const type = r.auditEventType;
    assert(Object.values(AuditEventType).includes(type), `auditEventType of ${r.name}: ${type}`);
  }
  deleteReason = list.value.find((r) => r.auditEventType === 'DeleteEntry');
  assert(deleteReason, 'no DeleteEntry audit reason');
  assert(list.value.some((r) => r.auditEventType === 'ExportDocument'), 'no ExportDocument audit reason');
});

await checks.run('listAttributes everyone=true: 2+; NextLink (1) and ForEach (10) keep to them', async () => {
  const c = attributesClient;
  const all = answered(await c.listAttributes({ repositoryId, everyone: true }), 'listAttributes');
  assert(all.value?.length >= 2, `attributes for everyone: ${short(all.value)}`);
  for (const a of all.value) assert(typeof a.key === 'string' && typeof a.value === 'string', `attribute ${short(a)}`);
  const paged = await collectNextLink(
    (prefer) => c.listAttributes({ repositoryId, everyone: true, prefer }),
    (args) => c.listAttributesNextLink(args),
    1,
  );
  sameItems(paged.items, all.value, (a) => a.key, 'NextLink (1)');
  eq(paged.pages, all.value.length, 'pages of 1');
  const each = await collectForEach((args) => c.listAttributesForEach(args), { repositoryId, everyone: true }, 10);
  sameItems(each.items, all.value, (a) => a.key, 'ForEach (10)');
});

await checks.run('listAttributes (own, no everyone): 1+; getAttribute by key, with and without everyone', async () => {
  const c = attributesClient;
  const own = answered(await c.listAttributes({ repositoryId }), 'listAttributes');
  assert(own.value?.length >= 1, `the user's own attributes: ${short(own.value)}`);
  const first = own.value[0];
  const one = answered(await c.getAttribute({ repositoryId, attributeKey: first.key }), 'getAttribute');
  eq(one.key, first.key, 'key');
  eq(one.value, first.value, 'value');
  const everyone = (await c.listAttributes({ repositoryId, everyone: true })).value[0];
  const shared = answered(
    await c.getAttribute({ repositoryId, attributeKey: everyone.key, everyone: true }),
    'getAttribute (everyone)',
  );
  eq(shared.value, everyone.value, `value of ${everyone.key} for everyone`);
  await expectApiException(c.getAttribute({ repositoryId, attributeKey: 'no such key' }), 404);
});

await checks.run('sample INV-0001.txt: template Invoice, Vendor Acme Corp, tag Reviewed, a link', async () => {
  const invoice = await entryAtPath(INVOICE_PATH);
  assert(invoice, `${INVOICE_PATH} does not exist (the sample repository?)`);
  eq(invoice.templateName, 'Invoice', 'templateName');
  const template = templates?.find((t) => t.name === 'Invoice');
  if (template) eq(invoice.templateId, template.id, 'templateId');
  assert(invoice.templateFieldNames?.includes('Vendor'), `templateFieldNames: ${short(invoice.templateFieldNames)}`);
  const fields = answered(await entriesClient.listFields({ repositoryId, entryId: invoice.id }), 'listFields');
  const vendor = fields.value.find((f) => f.name === 'Vendor');
  assert(vendor, `no Vendor field: ${short(fields.value)}`);
  eq(vendor.constructor.name, 'Field', 'client class');
  eq(JSON.stringify(vendor.values), '["Acme Corp"]', 'values of Vendor');
  eq(vendor.isRequired, true, 'isRequired of Vendor (the Invoice template requires it)');
  eq(vendor.fieldType, 'String', 'fieldType of Vendor');
  const tags = answered(await entriesClient.listTags({ repositoryId, entryId: invoice.id }), 'listTags');
  assert(tags.value.some((t) => t.name === 'Reviewed'), `tags: ${short(tags.value.map(byName))}`);
  const links = answered(await entriesClient.listLinks({ repositoryId, entryId: invoice.id }), 'listLinks');
  const agreementId = await entryIdAt(AGREEMENT_PATH);
  const link = links.value.find((k) => k.targetId === agreementId);
  assert(link, `no link to ${AGREEMENT_PATH} (${agreementId}): ${short(links.value)}`);
  eq(link.sourceId, invoice.id, 'sourceId');
  eq(link.targetFullPath, AGREEMENT_PATH, 'targetFullPath');
  eq(link.sourceFullPath, INVOICE_PATH, 'sourceFullPath');
  assert(link.linkDefinitionId > 0 && link.sourceLabel && link.targetLabel, `link definition: ${short(link)}`);
});

await checks.run('the sample agreement.md lists its links at both ends: from INV-0001, to amendment-1', async () => {
  const [agreementId, invoiceId, amendmentId] = [
    await entryIdAt(AGREEMENT_PATH),
    await entryIdAt(INVOICE_PATH),
    await entryIdAt(AMENDMENT_PATH),
  ];
  const links = answered(await entriesClient.listLinks({ repositoryId, entryId: agreementId }), 'listLinks');
  const ends = links.value.map((k) => `${k.sourceId}->${k.targetId}`).sort();
  eq(ends.join(' '), [`${agreementId}->${amendmentId}`, `${invoiceId}->${agreementId}`].sort().join(' '), 'links');
  const tags = answered(await entriesClient.listTags({ repositoryId, entryId: agreementId }), 'listTags');
  const secure = tags.value.find((t) => t.isSecure === true);
  assert(secure?.watermark?.text, `a secure tag with its watermark: ${short(tags.value)}`);
});

await checks.run('paging setup (PagingTestData): folder P, 2 children, 2 String fields, 2 tags, 2 links', async () => {
  need(work, 'the work folder');
  need(stringFields, 'two unconstrained String field definitions');
  need(infoTags, 'two non-secure tag definitions');
  need(linkDefinitions, 'the link definitions');
  const p = await createFolder(work.id, 'PagingSetup', true);
  pagingChildren = [await createFolder(p.id, 'child0', true), await createFolder(p.id, 'child1', true)];
  const fields = answered(
    await entriesClient.setFields({
      repositoryId,
      entryId: p.id,
      request: new SetFieldsRequest({
        fields: stringFields.map((d) => new FieldToUpdate({ name: d.name, values: ['a'] })),
      }),
    }),
    'setFields',
  );
  eq(fields.value?.map(byName).sort().join(','), stringFields.map(byName).sort().join(','), 'fields in the answer');
  const tags = answered(
    await entriesClient.setTags({
      repositoryId,
      entryId: p.id,
      request: new SetTagsRequest({ tags: infoTags.map(byName) }),
    }),
    'setTags',
  );
  eq(tags.value?.map(byName).sort().join(','), infoTags.map(byName).sort().join(','), 'tags in the answer');
  const [l0, l1] = [linkDefinitions[0], linkDefinitions[1] ?? linkDefinitions[0]];
  const links = answered(
    await entriesClient.setLinks({
      repositoryId,
      entryId: p.id,
      request: new SetLinksRequest({
        links: [
          new LinkToUpdate({ linkDefinitionId: l0.id, otherEntryId: pagingChildren[0].id }),
          new LinkToUpdate({ linkDefinitionId: l1.id, otherEntryId: pagingChildren[1].id }),
        ],
      }),
    }),
    'setLinks',
  );
  eq(links.value?.length, 2, 'links in the answer');
  for (const k of links.value) eq(k.sourceId, p.id, 'sourceId (isSource defaults to true)');
  eq(links.value.map((k) => k.targetId).sort().join(','), pagingChildren.map(byId).sort().join(','), 'targetIds');
  pagingFolder = p;
});

/** P's four collections: [name, unpaged list, ForEach helper, list with Prefer, NextLink helper, key]. */
function pagingCollections(entryId) {
  const c = entriesClient;
  const args = { repositoryId, entryId };
  return [
    [
      'Children',
      () => c.listEntries(args),
      (a) => c.listEntriesForEach(a),
      (prefer) => c.listEntries({ ...args, prefer }),
      (a) => c.listEntriesNextLink(a),
      byId,
    ],
    [
      'Fields',
      () => c.listFields(args),
      (a) => c.listFieldsForEach(a),
      (prefer) => c.listFields({ ...args, prefer }),
      (a) => c.listFieldsNextLink(a),
      byName,
    ],
    [
      'Links',
      () => c.listLinks(args),
      (a) => c.listLinksForEach(a),
      (prefer) => c.listLinks({ ...args, prefer }),
      (a) => c.listLinksNextLink(a),
      byId,
    ],
    [
      'Tags',
      () => c.listTags(args),
      (a) => c.listTagsForEach(a),
      (prefer) => c.listTags({ ...args, prefer }),
      (a) => c.listTagsNextLink(a),
      byName,
    ],
  ];
}

await checks.run('ForEach (maxPageSize 10) over P\'s Children, Fields, Links and Tags: each item once', async () => {
  need(pagingFolder, 'the paging folder P');
  for (const [name, list, forEach, , , key] of pagingCollections(pagingFolder.id)) {
    const unpaged = answered(await list(), `list ${name}`).value;
    eq(unpaged.length, 2, `${name} of P`);
    const each = await collectForEach(forEach, { repositoryId, entryId: pagingFolder.id }, 10);
    sameItems(each.items, unpaged, key, name);
    eq(each.pages, 1, `${name}: pages of 10`);
  }
});

await checks.run('NextLink (maxpagesize 1) over P\'s Children, Fields, Links and Tags: each item once', async () => {
  need(pagingFolder, 'the paging folder P');
  for (const [name, list, , first, nextLink, key] of pagingCollections(pagingFolder.id)) {
    const unpaged = (await list()).value;
    const paged = await collectNextLink(first, nextLink, 1);
    sameItems(paged.items, unpaged, key, name);
    eq(paged.pages, 2, `${name}: pages of 1`);
  }
});

await checks.run('what v2 set on P, v1 reads (GET v1 fields, tags, links)', async () => {
  need(pagingFolder, 'the paging folder P');
  const fields = await v1Get(`/Entries/${pagingFolder.id}/fields`);
  const v1Fields = Object.fromEntries(fields.value.map((f) => [f.fieldName, f.values.map((v) => v.value)]));
  for (const d of stringFields) eq(JSON.stringify(v1Fields[d.name]), '["a"]', `v1 values of ${d.name}`);
  eq(fields.value[0].values[0].position, 1, 'position of the first value');
  const tags = await v1Get(`/Entries/${pagingFolder.id}/tags`);
  eq(tags.value.map(byName).sort().join(','), infoTags.map(byName).sort().join(','), 'v1 tags');
  const links = await v1Get(`/Entries/${pagingFolder.id}/links`);
  eq(links.value.length, 2, 'v1 links');
  for (const k of links.value) {
    eq(k.sourceId, pagingFolder.id, 'v1 sourceId');
    assert(Number.isInteger(k.linkId) && Number.isInteger(k.linkTypeId), `v1 link ${short(k)}`);
  }
});

await checks.run('setFields on a new folder: exactly the one field set, read back (SetEntries)', async () => {
  need(work, 'the work folder');
  need(stringFields, 'an unconstrained String field definition');
  const e = await createFolder(work.id, 'SetFields', true);
  const name = stringFields[0].name;
  const answer = answered(
    await entriesClient.setFields({
      repositoryId,
      entryId: e.id,
      request: new SetFieldsRequest({ fields: [new FieldToUpdate({ name, values: ['a'] })] }),
    }),
    'setFields',
  );
  eq(answer.value?.length, 1, 'fields in the answer');
  eq(answer.value[0].name, name, 'name');
  eq(JSON.stringify(answer.value[0].values), '["a"]', 'values');
  const listed = answered(await entriesClient.listFields({ repositoryId, entryId: e.id }), 'listFields');
  eq(JSON.stringify(fieldMap(listed)), JSON.stringify({ [name]: ['a'] }), 'listFields');
  fieldsEntry = e;
});

await checks.run('setFields of Number, Date, DateTime, List, LongInteger, multi-value fields: read back', async () => {
  need(work, 'the work folder');
  need(fieldDefinitions, 'the field definitions');
  const sample = {
    Number: ['12.50'],
    Date: ['2026-01-31'],
    DateTime: ['2026-03-02T10:00:00'],
    LongInteger: ['42'],
  };
  // the first field definition of each type (a List takes its last list value; a multi-value String 3 values)
  const wanted = {};
  const used = new Set();
  for (const d of fieldDefinitions) {
    const kind = d.fieldType === 'String' ? (d.isMultiValue && !d.constraint ? 'multi' : undefined) : d.fieldType;
    if (!kind || used.has(kind)) continue;
    if (kind === 'List') wanted[d.name] = [d.listValues.at(-1)];
    else if (kind === 'multi') wanted[d.name] = ['one', 'two', 'three'];
    else if (sample[kind]) wanted[d.name] = sample[kind];
    else continue;
    used.add(kind);
  }
  assert(Object.keys(wanted).length >= 5, `typed fields to set: ${short(wanted)}`);
  const e = await createFolder(work.id, 'TypedFields', true);
  const request = new SetFieldsRequest({
    fields: Object.entries(wanted).map(([name, values]) => new FieldToUpdate({ name, values })),
  });
  const answer = answered(await entriesClient.setFields({ repositoryId, entryId: e.id, request }), 'setFields');
  const listed = answered(await entriesClient.listFields({ repositoryId, entryId: e.id }), 'listFields');
  for (const [name, values] of Object.entries(wanted)) {
    eq(JSON.stringify(fieldMap(answer)[name]), JSON.stringify(values), `${name} in the answer`);
    eq(JSON.stringify(fieldMap(listed)[name]), JSON.stringify(values), `${name} read back`);
  }
  eq(listed.value.length, Object.keys(wanted).length, 'fields read back');
});

await checks.run('setFields with Amount "abc": 400 naming the field, the entry\'s fields unchanged', async () => {
  need(fieldsEntry, 'the folder with a field set');
  const before = await entriesClient.listFields({ repositoryId, entryId: fieldsEntry.id });
  const request = new SetFieldsRequest({
    fields: [
      new FieldToUpdate({ name: stringFields[0].name, values: ['changed'] }),
      new FieldToUpdate({ name: 'Amount', values: ['abc'] }),
    ],
  });
  const refused = entriesClient.setFields({ repositoryId, entryId: fieldsEntry.id, request });
  const err = await expectApiException(refused, 400);
  assertServerProblem(err, 400);
  assertNames(err, 'Amount');
  const after = await entriesClient.listFields({ repositoryId, entryId: fieldsEntry.id });
  eq(JSON.stringify(fieldMap(after)), JSON.stringify(fieldMap(before)), 'fields after the refused set');
});

await checks.run('setTags with one non-secure tag, then listTags: exactly that tag (SetEntries)', async () => {
  need(work, 'the work folder');
  need(infoTags, 'a non-secure tag definition');
  const e = await createFolder(work.id, 'SetTags', true);
  const name = infoTags[0].name;
  const answer = answered(
    await entriesClient.setTags({ repositoryId, entryId: e.id, request: new SetTagsRequest({ tags: [name] }) }),
    'setTags',
  );
  eq(answer.value?.map(byName).join(','), name, 'tags in the answer');
  eq(answer.value[0].isSecure, false, 'isSecure');
  const listed = answered(await entriesClient.listTags({ repositoryId, entryId: e.id }), 'listTags');
  eq(listed.value.map(byName).join(','), name, 'tags read back');
  // an unknown tag: refused, and the tags stay
  const err = await expectApiException(
    entriesClient.setTags({
      repositoryId,
      entryId: e.id,
      request: new SetTagsRequest({ tags: [name, 'No Such Tag'] }),
    }),
    400,
  );
  assertNames(err, 'No Such Tag');
  eq((await entriesClient.listTags({ repositoryId, entryId: e.id })).value.map(byName).join(','), name, 'tags after');
  // an empty set clears them
  const cleared = answered(
    await entriesClient.setTags({ repositoryId, entryId: e.id, request: new SetTagsRequest({ tags: [] }) }),
    'setTags (none)',
  );
  eq(cleared.value?.length, 0, 'tags after setting none');
});

await checks.run('setLinks with link definition 1: one link S -> T, listed at both ends (SetLinks)', async () => {
  need(work, 'the work folder');
  const s = await createFolder(work.id, 'SetLinks Source', true);
  const t = await createFolder(s.id, 'SetLinks Target', true);
  const answer = answered(
    await entriesClient.setLinks({
      repositoryId,
      entryId: s.id,
      request: new SetLinksRequest({
        links: [new LinkToUpdate({ linkDefinitionId: 1, otherEntryId: t.id, isSource: true })],
      }),
    }),
    'setLinks',
  );
  eq(answer.value?.length, 1, 'links in the answer');
  const link = answer.value[0];
  eq(link.constructor.name, 'Link', 'client class');
  eq(link.sourceId, s.id, 'sourceId');
  eq(link.targetId, t.id, 'targetId');
  eq(link.linkDefinitionId, 1, 'linkDefinitionId');
  const definition = linkDefinitions?.find((d) => d.id === 1);
  if (definition) {
    eq(link.sourceLabel, definition.sourceLabel, 'sourceLabel');
    eq(link.targetLabel, definition.targetLabel, 'targetLabel');
  }
  eq(link.targetFullPath, `${s.fullPath}\\${t.name}`, 'targetFullPath');
  const absolute = link.sourceLink?.startsWith('http') && link.targetLink?.startsWith('http');
  assert(absolute, `sourceLink, targetLink: ${short(link)}`);
  const fromTarget = answered(await entriesClient.listLinks({ repositoryId, entryId: t.id }), 'listLinks (target)');
  eq(fromTarget.value.map(byId).join(','), String(link.id), 'links listed at the target');
  // a link to an entry that does not exist: refused, and the links stay
  await expectApiException(
    entriesClient.setLinks({
      repositoryId,
      entryId: s.id,
      request: new SetLinksRequest({ links: [new LinkToUpdate({ linkDefinitionId: 1, otherEntryId: 2_000_000_000 })] }),
    }),
    400,
  );
  const after = await entriesClient.listLinks({ repositoryId, entryId: s.id });
  eq(after.value.map(byId).join(','), String(link.id), 'links after');
});

await checks.run('setTemplate (all fields optional), then removeTemplate: templateId 0 (RemoveEntries)', async () => {
  need(work, 'the work folder');
  const template = need(optionalTemplate, 'a template whose fields are all optional');
  const e = await createFolder(work.id, 'RemoveTemplateFromEntry', true);
  const set = answered(
    await entriesClient.setTemplate({
      repositoryId,
      entryId: e.id,
      request: new SetTemplateRequest({ templateName: template.name }),
    }),
    'setTemplate',
  );
  eq(set.id, e.id, 'id');
  eq(set.templateName, template.name, 'templateName');
  eq(set.templateId, template.id, 'templateId');
  eq(JSON.stringify(set.templateFieldNames), JSON.stringify(template.fieldNames), 'templateFieldNames');
  eq((await getEntry(e.id)).templateName, template.name, 'templateName read back');
  const removed = answered(await entriesClient.removeTemplate({ repositoryId, entryId: e.id }), 'removeTemplate');
  eq(removed.id, e.id, 'id');
  eq(removed.templateId, 0, 'templateId after removeTemplate');
  const name = removed.templateName;
  assert([undefined, null, ''].includes(name), `templateName after removeTemplate: ${name}`);
  eq((await getEntry(e.id)).templateId, 0, 'templateId read back');
});

await checks.run('setTemplate Invoice: refused without its required Vendor, then set with fields', async () => {
  need(work, 'the work folder');
  const e = await createFolder(work.id, 'SetTemplate Invoice', true);
  const err = await expectApiException(
    entriesClient.setTemplate({
      repositoryId,
      entryId: e.id,
      request: new SetTemplateRequest({ templateName: 'Invoice' }),
    }),
    400,
  );
  assertNames(err, 'Vendor');
  eq((await getEntry(e.id)).templateId, 0, 'templateId after the refused setTemplate');
  const fields = [
    new FieldToUpdate({ name: 'Vendor', values: ['Initech'] }),
    new FieldToUpdate({ name: 'Amount', values: ['99.95'] }),
  ];
  const set = answered(
    await entriesClient.setTemplate({
      repositoryId,
      entryId: e.id,
      request: new SetTemplateRequest({ templateName: 'Invoice', fields }),
    }),
    'setTemplate',
  );
  eq(set.templateName, 'Invoice', 'templateName');
  assert(set.templateFieldNames?.includes('Vendor'), `templateFieldNames: ${short(set.templateFieldNames)}`);
  const listed = fieldMap(await entriesClient.listFields({ repositoryId, entryId: e.id }));
  eq(JSON.stringify(listed.Vendor), '["Initech"]', 'Vendor');
  eq(JSON.stringify(listed.Amount), '["99.95"]', 'Amount');
});

await checks.run('startDeleteEntry of P with a DeleteEntry audit reason: links to its children go', async () => {
  need(pagingFolder, 'the paging folder P');
  const reason = need(deleteReason, 'a DeleteEntry audit reason');
  const outside = need(fieldsEntry, 'a folder outside P');
  // a link from outside P to one of its children, which the delete must remove
  const linked = answered(
    await entriesClient.setLinks({
      repositoryId,
      entryId: outside.id,
      request: new SetLinksRequest({
        links: [new LinkToUpdate({ linkDefinitionId: linkDefinitions.at(-1).id, otherEntryId: pagingChildren[0].id })],
      }),
    }),
    'setLinks',
  );
  eq(linked.value?.length, 1, 'links of the folder outside P');
  const started = answered(
    await entriesClient.startDeleteEntry({
      repositoryId,
      entryId: pagingFolder.id,
      request: new StartDeleteEntryRequest({ auditReasonId: reason.id, auditReasonComment: 'compat stage' }),
    }),
    'startDeleteEntry',
  );
  eq((await waitForTask(started.taskId)).status, 'Completed', 'status');
  await expectApiException(entriesClient.getEntry({ repositoryId, entryId: pagingFolder.id }), 404);
  const after = answered(await entriesClient.listLinks({ repositoryId, entryId: outside.id }), 'listLinks');
  eq(after.value.length, 0, 'links of the folder outside P after the delete');
});

// --------------------------------------------------------------------------- search, export, uploads in parts
// v2's other long operations (CONTRACT-V2.md; LF-V2-CLIENT.md 2.20, 2.21 and 3), as an integration uses them: a
// search started, awaited and its results and context hits read page by page; an Edoc export downloaded from the
// finished task's result.uri; a file uploaded in parts to the URLs the server hands out and imported from them.

const { searchesClient, simpleSearchesClient } = client;
// the commands of the vendor's Search and SimpleSearch tests
const SEARCH_TEXT = '({LF:Basic ~= "search text", option="DFANLT"})';
const SEARCH_WORD = '({LF:Basic ~= "search", option="DFANLT"})';
// what the searched documents hold: "search text" once, the word "search" three times in all
const SEARCHED_TEXT = 'This note holds the search text that the compat stage looks for.\nSearch it, search it again.\n';
const MIB = 1024 * 1024;
// an upload in 3 parts: S3's rules want 5 MB or more in each part but the last
const PART_SIZES = [5 * MIB, 5 * MIB + 17, 123_457];

const documentsPath = () => `${baseUrl}/v2/Repositories/${encodeURIComponent(repositoryId)}/Entries`;

/** GET `url` through the client's own http handler (its bearer token): {status, bytes}. */
async function getWithToken(url, headers = {}) {
  const response = await entriesClient.http.fetch(url, { method: 'GET', headers });
  return { status: response.status, bytes: await bodyBytes(response) };
}

/** A document's electronic document, through GET Entries/{id}/Document/Edoc (1.3.0 has no method for it). */
async function edocOf(entryId) {
  const url = `${documentsPath()}/${entryId}/Document/Edoc`;
  const got = await getWithToken(url, { Accept: '*/*' });
  eq(got.status, 200, `status of GET ${url}`);
  return got.bytes;
}

/**
 * Start a search and list its task once: LF-V2-CLIENT.md 2.20 wants that first answer to say Completed (the
 * server holds it until the search ends). Returns the task id.
 */
async function completedSearch(searchCommand) {
  const started = answered(
    await searchesClient.startSearchEntry({ repositoryId, request: new StartSearchEntryRequest({ searchCommand }) }),
    'startSearchEntry',
  );
  assert(typeof started.taskId === 'string' && started.taskId, `no taskId: ${short(started)}`);
  const listed = answered(await tasksClient.listTasks({ repositoryId, taskIds: [started.taskId] }), 'listTasks');
  const task = listed.value?.[0];
  eq(task?.id, started.taskId, 'id of the listed task');
  eq(task.status, 'Completed', 'status on the first listTasks');
  eq(task.taskType, 'SearchEntry', 'taskType');
  return started.taskId;
}

/** The search's first page of results (default page size); each row has a distinct rowNumber. */
async function searchResults(taskId, options = {}) {
  const results = answered(
    await searchesClient.listSearchResults({ repositoryId, taskId, ...options }),
    'listSearchResults',
  );
  assert(Array.isArray(results.value), `no value array: ${short(results)}`);
  const rows = results.value.map((e) => e.rowNumber);
  assert(rows.every((n) => Number.isInteger(n)), `rows without a rowNumber: ${short(results.value)}`);
  eq(new Set(rows).size, rows.length, 'distinct rowNumbers');
  return results.value;
}

/** The search tasks the checks started; each is cancelled once ended, as the vendor's afterEach does. */
const searchTasks = [];
let searchFolder; // the documents the searches find
let searchedDocuments;
let wordSearchTaskId;

await checks.run('importEntry 2 text documents holding "search text" (what the searches find)', async () => {
  need(work, 'the work folder');
  searchFolder = await createFolder(work.id, 'searched');
  searchedDocuments = [];
  for (const name of ['searched note 1', 'searched note 2']) {
    searchedDocuments.push(
      answered(
        await entriesClient.importEntry({
          repositoryId,
          entryId: searchFolder.id,
          file: fileParameter(SEARCHED_TEXT, `${name}.txt`),
          request: new ImportEntryRequest({ name }),
        }),
        'importEntry',
      ),
    );
  }
  eq(searchedDocuments.map((d) => d.entryType).join(','), 'Document,Document', 'entryType');
});

await checks.run('startSearchEntry "search text": Completed at once, rows with rowNumber, context hits', async () => {
  const documents = need(searchedDocuments, 'the searched documents');
  const taskId = await completedSearch(SEARCH_TEXT);
  searchTasks.push(taskId);
  const results = await searchResults(taskId);
  assert(results.length > 0, 'no results');
  const found = new Set(results.map(byId));
  for (const d of documents) assert(found.has(d.id), `${d.fullPath} (${d.id}) is not among the results`);
  const classes = ['Document', 'Folder', 'Shortcut'];
  for (const e of results) assert(classes.includes(e.constructor.name), `result ${short(e)}`);
  const hits = answered(
    await searchesClient.listSearchContextHits({ repositoryId, taskId, rowNumber: results[0].rowNumber }),
    'listSearchContextHits',
  );
  assert(Array.isArray(hits.value), `no value array: ${short(hits)}`);
  // the vendor's "Get Search Results for each Paging": pages of 10 hold the rows listed unpaged
  const each = await collectForEach((a) => searchesClient.listSearchResultsForEach(a), { repositoryId, taskId }, 10);
  sameItems(each.items, results, (e) => e.rowNumber, 'results, ForEach (10)');
});

await checks.run('search results, LookIn the searched folder: exactly its 2; ForEach (10), NextLink (1)', async () => {
  const folder = need(searchFolder, 'the searched folder');
  const taskId = await completedSearch(`{LF:LookIn="${folder.fullPath}"} & ${SEARCH_TEXT}`);
  searchTasks.push(taskId);
  const results = await searchResults(taskId);
  eq(results.map(byId).sort().join(','), searchedDocuments.map(byId).sort().join(','), 'ids of the results');
  const each = await collectForEach((a) => searchesClient.listSearchResultsForEach(a), { repositoryId, taskId }, 10);
  sameItems(each.items, results, byId, 'ForEach (10)');
  eq(each.pages, 1, 'pages of 10');
  const paged = await collectNextLink(
    (prefer) => searchesClient.listSearchResults({ repositoryId, taskId, prefer }),
    (a) => searchesClient.listSearchResultsNextLink(a),
    1,
  );
  sameItems(paged.items, results, byId, 'NextLink (1)');
  eq(paged.pages, 2, 'pages of 1');
});

await checks.run('listSearchContextHits for "search": 1+ on the first row; a note\'s hits point at it', async () => {
  const documents = need(searchedDocuments, 'the searched documents');
  const taskId = await completedSearch(SEARCH_WORD);
  searchTasks.push(taskId);
  wordSearchTaskId = taskId;
  const results = await searchResults(taskId);
  assert(results.length > 0, 'no results');
  // the vendor's "Get Search Context Hits for each Paging": pages of 10 on the first row give 1 hit or more
  const first = await collectForEach(
    (a) => searchesClient.listSearchContextHitsForEach(a),
    { repositoryId, taskId, rowNumber: results[0].rowNumber },
    10,
  );
  assert(first.items.length >= 1, `no context hits on row ${results[0].rowNumber} (${short(results[0])})`);
  // the first searched note: its text says "search" three times (any case)
  const row = results.find((e) => e.id === documents[0].id);
  assert(row, `${documents[0].fullPath} is not among the results`);
  const hits = answered(
    await searchesClient.listSearchContextHits({ repositoryId, taskId, rowNumber: row.rowNumber }),
    'listSearchContextHits',
  ).value;
  for (const h of [...first.items, ...hits]) {
    eq(h.constructor.name, 'SearchContextHit', 'client class');
    assert(Object.values(HitType).includes(h.hitType), `hitType (a HitType) of ${short(h)}`);
  }
  const inText = hits.filter((h) => h.hitType === 'Edoc');
  eq(inText.length, 3, `Edoc hits on the note (${short(hits)})`);
  for (const h of inText) {
    assert(typeof h.context === 'string', `context of ${short(h)}`);
    const word = h.context.slice(h.highlight1Offset, h.highlight1Offset + h.highlight1Length);
    eq(word.toLowerCase(), 'search', `the highlighted text of ${short(h)}`);
  }
  const key = (h) => JSON.stringify(h.toJSON());
  const each = await collectForEach(
    (a) => searchesClient.listSearchContextHitsForEach(a),
    { repositoryId, taskId, rowNumber: row.rowNumber },
    10,
  );
  sameItems(each.items, hits, key, 'hits, ForEach (10)');
  const paged = await collectNextLink(
    (prefer) => searchesClient.listSearchContextHits({ repositoryId, taskId, rowNumber: row.rowNumber, prefer }),
    (a) => searchesClient.listSearchContextHitsNextLink(a),
    1,
  );
  sameItems(paged.items, hits, key, 'hits, NextLink (1)');
  eq(paged.pages, hits.length, 'pages of 1');
});

await checks.run('cancelTasks of the ended searches: 200, result false each, still Completed', async () => {
  assert(searchTasks.length > 0, 'no search task (the searches failed)');
  const answer = answered(await tasksClient.cancelTasks({ repositoryId, taskIds: searchTasks }), 'cancelTasks');
  eq(requests.at(-1).status, 200, 'status');
  eq(answer.value?.map(byId).sort().join(','), [...searchTasks].sort().join(','), 'ids in the cancel answer');
  for (const t of answer.value) eq(t.result, false, `result for ${t.id}`);
  for (const t of await waitForTasks(searchTasks)) eq(t.status, 'Completed', `status of ${t.id}`);
  // a cancelled search keeps its results
  if (wordSearchTaskId) assert((await searchResults(wordSearchTaskId)).length > 0, 'no results after the cancel');
});

await checks.run('searchEntry (SimpleSearches) "search text": 200 with the searched documents', async () => {
  const documents = need(searchedDocuments, 'the searched documents');
  const answer = answered(
    await simpleSearchesClient.searchEntry({
      repositoryId,
      request: new SearchEntryRequest({ searchCommand: SEARCH_TEXT }),
    }),
    'searchEntry',
  );
  eq(requests.at(-1).status, 200, 'status (206 would mean a truncated listing)');
  assert(Array.isArray(answer.value), `no value array: ${short(answer)}`);
  const found = new Set(answer.value.map(byId));
  for (const d of documents) assert(found.has(d.id), `${d.fullPath} (${d.id}) is not among the results`);
});

await checks.run('an unsupported construct ({LF:Creator="admin"}): 400 naming it, from both routes', async () => {
  const searchCommand = '{LF:Creator="admin"} & {LF:Name="*"}';
  const started = await expectApiException(
    searchesClient.startSearchEntry({ repositoryId, request: new StartSearchEntryRequest({ searchCommand }) }),
    400,
  );
  assertServerProblem(started, 400);
  assertNames(started, 'LF:Creator');
  const simple = await expectApiException(
    simpleSearchesClient.searchEntry({ repositoryId, request: new SearchEntryRequest({ searchCommand }) }),
    400,
  );
  assertNames(simple, 'LF:Creator');
});

await checks.run('startExportEntry Edoc of INV-0001.txt (ExportDocument reason): result.uri = its bytes', async () => {
  const invoice = await entryAtPath(INVOICE_PATH);
  assert(invoice, `${INVOICE_PATH} does not exist (the sample repository?)`);
  const reasons = answered(await auditReasonsClient.listAuditReasons({ repositoryId }), 'listAuditReasons');
  const reason = reasons.value.find((r) => r.auditEventType === 'ExportDocument');
  assert(reason, 'no ExportDocument audit reason');
  const request = new StartExportEntryRequest({
    part: ExportEntryRequestPart.Edoc,
    auditReasonId: reason.id,
    auditReasonComment: 'compat stage',
  });
  const started = answered(
    await entriesClient.startExportEntry({ repositoryId, entryId: invoice.id, request }),
    'startExportEntry',
  );
  assert(typeof started.taskId === 'string' && started.taskId, `no taskId: ${short(started)}`);
  const task = await waitForTask(started.taskId);
  eq(task.status, 'Completed', `status (errors ${short(task.errors)})`);
  eq(task.taskType, 'ExportEntry', 'taskType');
  eq(task.percentComplete, 100, 'percentComplete');
  const uri = task.result?.uri;
  assert(typeof uri === 'string' && uri.startsWith('http'), `result.uri is not an absolute URL: ${short(task.result)}`);
  const download = await getWithToken(uri, { Accept: '*/*' });
  eq(download.status, 200, `status of GET ${uri}`);
  const edoc = await edocOf(invoice.id);
  eq(edoc.length, invoice.electronicDocumentSize, 'Edoc bytes against electronicDocumentSize');
  sameBytes(download.bytes, edoc, 'the download against the Edoc');
});

await checks.run('startExportEntry part Image: 400 (this sandbox has no page images)', async () => {
  const invoice = await entryAtPath(INVOICE_PATH);
  assert(invoice, `${INVOICE_PATH} does not exist (the sample repository?)`);
  const request = new StartExportEntryRequest({ part: ExportEntryRequestPart.Image });
  const refused = entriesClient.startExportEntry({ repositoryId, entryId: invoice.id, request });
  const err = await expectApiException(refused, 400);
  assertServerProblem(err, 400);
});

/**
 * Upload `parts` (Buffers) to fresh upload URLs, all at once, with plain fetch and no Authorization header (each
 * URL carries its own credential). Returns {uploadId, etags} with the ETag of each part, in part order.
 */
async function uploadParts(parts, fileName, mimeType = 'application/octet-stream') {
  const request = new CreateMultipartUploadUrlsRequest({
    startingPartNumber: 1,
    numberOfParts: parts.length,
    fileName,
    mimeType,
  });
  const answer = answered(
    await entriesClient.createMultipartUploadUrls({ repositoryId, request }),
    'createMultipartUploadUrls',
  );
  assert(typeof answer.uploadId === 'string' && answer.uploadId, `no uploadId: ${short(answer)}`);
  eq(answer.urls?.length, parts.length, 'upload URLs');
  for (const url of answer.urls) assert(url.startsWith('http'), `upload URL ${url} is not absolute`);
  const since = requests.length;
  const etags = await Promise.all(
    answer.urls.map(async (url, i) => {
      const response = await fetch(url, {
        method: 'PUT',
        body: parts[i],
        headers: { 'Content-Type': 'application/octet-stream' },
      });
      const text = await response.text();
      eq(response.status, 200, `status of the PUT of part ${i + 1} (${text.slice(0, 200)})`);
      const etag = response.headers.get('etag');
      assert(etag, `the PUT of part ${i + 1} answered no ETag`);
      return etag;
    }),
  );
  eq(requests.slice(since).filter((r) => r.auth).length, 0, 'PUTs that carried an Authorization header');
  return { uploadId: answer.uploadId, etags };
}

let partsFolder;
let uploaded; // {doc, bytes}: the document imported from parts, and its bytes

await checks.run('upload in 3 parts (PUT with fetch, no bearer), startImportUploadedParts: same bytes', async () => {
  need(work, 'the work folder');
  partsFolder = await createFolder(work.id, 'uploaded in parts');
  const parts = PART_SIZES.map((n) => randomBytes(n));
  const whole = Buffer.concat(parts);
  const fileName = 'parts upload.bin';
  const { uploadId, etags } = await uploadParts(parts, fileName);
  // S3-style: a part's ETag is its MD5 (quoted or not)
  const unquoted = (etag) => etag.replace(/^(W\/)?"|"$/g, '').toLowerCase();
  etags.forEach((etag, i) => eq(unquoted(etag), md5Hex(parts[i]), `ETag of part ${i + 1}`));
  const name = 'uploaded in parts';
  const started = answered(
    await entriesClient.startImportUploadedParts({
      repositoryId,
      entryId: partsFolder.id,
      request: new StartImportUploadedPartsRequest({ uploadId, partETags: etags, name, autoRename: false }),
    }),
    'startImportUploadedParts',
  );
  assert(typeof started.taskId === 'string' && started.taskId, `no taskId: ${short(started)}`);
  const task = await waitForTask(started.taskId);
  eq(task.status, 'Completed', `status (errors ${short(task.errors)})`);
  eq(task.taskType, 'ImportUploadedParts', 'taskType');
  eq(task.percentComplete, 100, 'percentComplete');
  assert(task.result?.entryId > 0, `no result.entryId: ${short(task.result)}`);
  const doc = await getEntry(task.result.entryId);
  eq(doc.entryType, 'Document', 'entryType');
  eq(doc.parentId, partsFolder.id, 'parentId');
  eq(doc.name, name, 'name');
  eq(doc.electronicDocumentSize, whole.length, 'electronicDocumentSize');
  sameBytes(await edocOf(doc.id), whole, 'the document against the parts');
  uploaded = { doc, bytes: whole };
});

await checks.run('startExportEntry Edoc of the document uploaded in parts: the download is the file', async () => {
  const { doc, bytes } = need(uploaded, 'the document uploaded in parts');
  const request = new StartExportEntryRequest({ part: ExportEntryRequestPart.Edoc });
  const started = answered(
    await entriesClient.startExportEntry({ repositoryId, entryId: doc.id, request }),
    'startExportEntry',
  );
  const task = await waitForTask(started.taskId);
  eq(task.status, 'Completed', `status (errors ${short(task.errors)})`);
  const download = await getWithToken(need(task.result?.uri, 'result.uri'), { Accept: '*/*' });
  eq(download.status, 200, `status of GET ${task.result.uri}`);
  sameBytes(download.bytes, bytes, 'the download against the uploaded file');
});

await checks.run('updateDocumentUploadedParts (2 parts): Completed, the document holds the new bytes', async () => {
  const { doc } = need(uploaded, 'the document uploaded in parts');
  const parts = [randomBytes(5 * MIB), randomBytes(1000)];
  const { uploadId, etags } = await uploadParts(parts, 'parts update.bin');
  const started = answered(
    await entriesClient.updateDocumentUploadedParts({
      repositoryId,
      entryId: doc.id,
      request: new UpdateDocumentUploadedPartsRequest({ uploadId, partETags: etags }),
    }),
    'updateDocumentUploadedParts',
  );
  assert(typeof started.taskId === 'string' && started.taskId, `no taskId: ${short(started)}`);
  const task = await waitForTask(started.taskId);
  eq(task.status, 'Completed', `status (errors ${short(task.errors)})`);
  assert(Object.values(TaskType).includes(task.taskType), `taskType (a TaskType): ${task.taskType}`);
  const after = await getEntry(doc.id);
  const whole = Buffer.concat(parts);
  eq(after.name, doc.name, 'name');
  eq(after.parentId, doc.parentId, 'parentId');
  eq(after.electronicDocumentSize, whole.length, 'electronicDocumentSize');
  sameBytes(await edocOf(doc.id), whole, 'the document against the new parts');
});

await checks.run('startImportUploadedParts with a wrong ETag: the task ends Failed and creates nothing', async () => {
  const folder = need(partsFolder, 'the folder of the upload in parts');
  const part = randomBytes(4096);
  const { uploadId, etags } = await uploadParts([part], 'wrong etag.bin');
  const wrong = md5Hex(Buffer.concat([part, Buffer.from('x')]));
  assert(!etags[0].includes(wrong), 'the wrong ETag is the right one');
  const name = 'wrong etag';
  const started = answered(
    await entriesClient.startImportUploadedParts({
      repositoryId,
      entryId: folder.id,
      request: new StartImportUploadedPartsRequest({ uploadId, partETags: [`"${wrong}"`], name }),
    }),
    'startImportUploadedParts',
  );
  const task = await waitForTask(started.taskId);
  eq(task.status, 'Failed', 'status');
  assert(task.errors?.length > 0, `no errors: ${short(task.errors)}`);
  eq(await entryAtPath(`${folder.fullPath}\\${name}`), undefined, `${name} in ${folder.fullPath}`);
  const names = (await allChildren(folder.id)).map(byName);
  eq(names.join(','), 'uploaded in parts', 'children of the folder');
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

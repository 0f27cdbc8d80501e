// Drives the published v1 client, @laserfiche/lf-repository-api-client@1.1.12, against a running sandbox
// started with `--profile sdk` (the published v1 client needs starts and a completed copy to answer 201).
//
//   node --import ./register.mjs v1.mjs http://127.0.0.1:8080 [r-sandbox] [admin] [admin]
//
// Everything it creates goes into one folder with a unique name under the root, deleted at the end. Its
// metadata checks read the sample repository's catalog and the metadata of its sample entries
// (\Invoices\2026\INV-0001.txt, \Contracts\Acme Corp\agreement.md) without changing them.
import {
  CopyAsyncRequest,
  DeleteEntryWithAuditReason,
  FieldToUpdate,
  PostEntryChildrenEntryType,
  PostEntryChildrenRequest,
  PostEntryWithEdocMetadataRequest,
  PutLinksRequest,
  PutTagRequest,
  PutTemplateRequest,
  RepositoryApiClient,
  ValueToUpdate,
  WFieldFormat,
  WFieldType,
} from '@laserfiche/lf-repository-api-client';
import {
  Checks,
  assert,
  assertServerProblem,
  collectForEach,
  collectNextLink,
  eq,
  expectApiException,
  fileParameter,
  need,
  parseArgs,
  requests,
  sameItems,
  short,
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

// --------------------------------------------------------------------------- metadata
// Definitions (fields, tags, link types, templates), audit reasons and attributes in v1's shapes; the sample's
// metadata; values set and read back on entries in the work folder; and the same values through v2.

const { fieldDefinitionsClient, tagDefinitionsClient, linkDefinitionsClient, templateDefinitionsClient } = client;
const { auditReasonsClient, attributesClient } = client;
const INVOICE_PATH = '\\Invoices\\2026\\INV-0001.txt';
const INVOICES_PATH = '\\Invoices\\2026';
const AGREEMENT_PATH = '\\Contracts\\Acme Corp\\agreement.md';

const byId = (item) => item.id;

/** A v2 request with this client's token (one sign-in serves both dialects); the parsed JSON body. */
async function v2Request(method, path, body) {
  const url = `${baseUrl}/v2/Repositories/${encodeURIComponent(repoId)}${path}`;
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const response = await entriesClient.http.fetch(url, init);
  const text = await response.text();
  eq(response.status, 200, `status of ${method} ${url} (${text.slice(0, 200)})`);
  return JSON.parse(text);
}

async function entryAt(fullPath) {
  const found = await entriesClient.getEntryByPath({ repoId, fullPath });
  assert(found?.entry, `${fullPath} does not exist (the sample repository?)`);
  return found.entry;
}

/** v1 field values by field name: name -> [values in position order]. */
function v1Fields(list) {
  const byName = {};
  for (const f of list.value ?? list) {
    const values = [...f.values].sort((a, b) => a.position - b.position);
    byName[f.fieldName] = values.map((v) => v.value);
  }
  return byName;
}

/** v1's fieldsToUpdate: {name: FieldToUpdate{values: [{value, position}]}} from {name: [values]}. */
function fieldsToUpdate(wanted) {
  return Object.fromEntries(
    Object.entries(wanted).map(([name, values]) => [
      name,
      new FieldToUpdate({ values: values.map((value, i) => new ValueToUpdate({ value, position: i + 1 })) }),
    ]),
  );
}

function assertNames(err, what) {
  const pd = err.problemDetails ?? {};
  const text = `${pd.title ?? ''} ${pd.detail ?? ''}`;
  const named = `title ${JSON.stringify(pd.title)}, detail ${JSON.stringify(pd.detail)}`;
  assert(text.includes(what), `the problem does not name ${what}: ${named}`);
}

// what the metadata checks share
let fieldDefinitions;
let tagDefinitions;
let infoTags; // 2 tag definitions with isSecure false
let linkTypes;
let templates;
let deleteReasons;
let valued; // a folder with 2 fields, 2 tags and 2 links set through v1
let linkTargets; // the 2 folders its links point at

await checks.run('getFieldDefinitions: WFieldInfo (WFieldType, WFieldFormat); getFieldDefinitionById', async () => {
  const list = await fieldDefinitionsClient.getFieldDefinitions({ repoId });
  assert(Array.isArray(list?.value) && list.value.length >= 2, `field definitions: ${short(list?.value)}`);
  for (const d of list.value) {
    eq(d.constructor.name, 'WFieldInfo', 'client class');
    assert(Number.isInteger(d.id) && d.name, `id and name of ${short(d)}`);
    assert(Object.values(WFieldType).includes(d.fieldType), `fieldType of ${d.name} (a WFieldType): ${d.fieldType}`);
    assert(Object.values(WFieldFormat).includes(d.format), `format of ${d.name} (a WFieldFormat): ${d.format}`);
  }
  fieldDefinitions = list.value;
  const strings = list.value.filter((d) => d.fieldType === 'String' && !d.constraint && d.length >= 1);
  assert(strings.length >= 2, `unconstrained String field definitions: ${strings.length}`);
  const constrained = list.value.find((d) => d.constraint);
  assert(constrained, 'no field definition with a constraint');
  const one = await fieldDefinitionsClient.getFieldDefinitionById({ repoId, fieldDefinitionId: constrained.id });
  eq(one.id, constrained.id, 'id');
  eq(one.name, constrained.name, 'name');
  eq(one.constraint, constrained.constraint, 'constraint');
  eq(one.length, constrained.length, 'length');
  await expectApiException(fieldDefinitionsClient.getFieldDefinitionById({ repoId, fieldDefinitionId: 999_999 }), 404);
});

await checks.run('getFieldDefinitionsNextLink (maxpagesize 1) and ForEach (10): each definition once', async () => {
  need(fieldDefinitions, 'the field definitions');
  const c = fieldDefinitionsClient;
  const paged = await collectNextLink(
    (prefer) => c.getFieldDefinitions({ repoId, prefer }),
    (args) => c.getFieldDefinitionsNextLink(args),
    1,
  );
  sameItems(paged.items, fieldDefinitions, byId, 'NextLink (1)');
  eq(paged.pages, fieldDefinitions.length, 'pages of 1');
  const each = await collectForEach((args) => c.getFieldDefinitionsForEach(args), { repoId }, 10);
  sameItems(each.items, fieldDefinitions, byId, 'ForEach (10)');
});

await checks.run('getTagDefinitions: WTagInfo, non-secure and secure (watermark); getTagDefinitionById', async () => {
  const list = await tagDefinitionsClient.getTagDefinitions({ repoId });
  assert(Array.isArray(list?.value) && list.value.length >= 2, `tag definitions: ${short(list?.value)}`);
  tagDefinitions = list.value;
  infoTags = list.value.filter((t) => t.isSecure === false).slice(0, 2);
  eq(infoTags.length, 2, 'tag definitions with isSecure false');
  const secure = list.value.find((t) => t.isSecure === true);
  assert(secure?.watermark?.watermarkText, `a secure tag with its watermark: ${short(secure)}`);
  const one = await tagDefinitionsClient.getTagDefinitionById({ repoId, tagId: secure.id });
  eq(one.constructor.name, 'WTagInfo', 'client class');
  eq(one.id, secure.id, 'id');
  eq(one.name, secure.name, 'name');
  eq(one.watermark?.watermarkText, secure.watermark.watermarkText, 'watermarkText');
});

await checks.run('getTagDefinitionsNextLink (maxpagesize 1) and ForEach (10): each definition once', async () => {
  need(tagDefinitions, 'the tag definitions');
  const c = tagDefinitionsClient;
  const paged = await collectNextLink(
    (prefer) => c.getTagDefinitions({ repoId, prefer }),
    (args) => c.getTagDefinitionsNextLink(args),
    1,
  );
  sameItems(paged.items, tagDefinitions, byId, 'NextLink (1)');
  eq(paged.pages, tagDefinitions.length, 'pages of 1');
  const each = await collectForEach((args) => c.getTagDefinitionsForEach(args), { repoId }, 10);
  sameItems(each.items, tagDefinitions, byId, 'ForEach (10)');
});

await checks.run('getLinkDefinitions: EntryLinkTypeInfo {linkTypeId, labels}; getLinkDefinitionById(1)', async () => {
  const list = await linkDefinitionsClient.getLinkDefinitions({ repoId });
  assert(Array.isArray(list?.value) && list.value.length >= 2, `link definitions: ${short(list?.value)}`);
  linkTypes = list.value;
  for (const d of list.value) {
    eq(d.constructor.name, 'EntryLinkTypeInfo', 'client class');
    assert(Number.isInteger(d.linkTypeId) && d.sourceLabel && d.targetLabel, `link type ${short(d)}`);
  }
  const listed = list.value.find((d) => d.linkTypeId === 1);
  assert(listed, 'no link type with id 1');
  const one = await linkDefinitionsClient.getLinkDefinitionById({ repoId, linkTypeId: 1 });
  eq(one.linkTypeId, 1, 'linkTypeId');
  for (const key of ['sourceLabel', 'targetLabel', 'linkTypeDescription']) eq(one[key], listed[key], key);
});

await checks.run('getLinkDefinitionsNextLink (maxpagesize 1) and ForEach (10): each definition once', async () => {
  need(linkTypes, 'the link definitions');
  const c = linkDefinitionsClient;
  const key = (d) => d.linkTypeId;
  const paged = await collectNextLink(
    (prefer) => c.getLinkDefinitions({ repoId, prefer }),
    (args) => c.getLinkDefinitionsNextLink(args),
    1,
  );
  sameItems(paged.items, linkTypes, key, 'NextLink (1)');
  eq(paged.pages, linkTypes.length, 'pages of 1');
  const each = await collectForEach((args) => c.getLinkDefinitionsForEach(args), { repoId }, 10);
  sameItems(each.items, linkTypes, key, 'ForEach (10)');
});

await checks.run('getTemplateDefinitions, by templateName, by id; fields by id and by name = fieldCount', async () => {
  const c = templateDefinitionsClient;
  const list = await c.getTemplateDefinitions({ repoId });
  assert(Array.isArray(list?.value) && list.value.length >= 2, `template definitions: ${short(list?.value)}`);
  templates = list.value;
  for (const t of list.value) {
    eq(t.constructor.name, 'WTemplateInfo', 'client class');
    const named = await c.getTemplateDefinitions({ repoId, templateName: t.name });
    eq(named.value?.map(byId).join(','), String(t.id), `templates named ${t.name}`);
    const one = await c.getTemplateDefinitionById({ repoId, templateId: t.id });
    eq(one.name, t.name, `name of template ${t.id}`);
    eq(one.fieldCount, t.fieldCount, `fieldCount of ${t.name}`);
    const fields = await c.getTemplateFieldDefinitions({ repoId, templateId: t.id });
    eq(fields.value?.length, t.fieldCount, `field definitions of ${t.name} (its fieldCount)`);
    for (const f of fields.value) {
      eq(f.constructor.name, 'TemplateFieldInfo', 'client class');
      assert(typeof f.isRequired === 'boolean', `isRequired of ${t.name}.${f.name}: ${f.isRequired}`);
    }
    const byName = await c.getTemplateFieldDefinitionsByTemplateName({ repoId, templateName: t.name });
    eq(byName.value.map(byId).join(','), fields.value.map(byId).join(','), `fields of ${t.name} by name`);
  }
  const invoice = list.value.find((t) => t.name === 'Invoice');
  assert(invoice, 'no Invoice template (the sample catalog)');
  const invoiceFields = (await c.getTemplateFieldDefinitions({ repoId, templateId: invoice.id })).value;
  eq(invoiceFields.find((f) => f.name === 'Vendor')?.isRequired, true, 'isRequired of Invoice.Vendor');
  await expectApiException(c.getTemplateDefinitionById({ repoId, templateId: 999_999 }), 404);
});

await checks.run('template paging: NextLink (1), ForEach (10); template fields ForEach (1), NextLink (1)', async () => {
  need(templates, 'the template definitions');
  const c = templateDefinitionsClient;
  const paged = await collectNextLink(
    (prefer) => c.getTemplateDefinitions({ repoId, prefer }),
    (args) => c.getTemplateDefinitionsNextLink(args),
    1,
  );
  sameItems(paged.items, templates, byId, 'templates, NextLink (1)');
  const each = await collectForEach((args) => c.getTemplateDefinitionsForEach(args), { repoId }, 10);
  sameItems(each.items, templates, byId, 'templates, ForEach (10)');
  const t = templates.find((x) => x.fieldCount >= 2);
  assert(t, 'no template with 2 fields or more');
  const unpaged = (await c.getTemplateFieldDefinitions({ repoId, templateId: t.id })).value;
  const fieldsEach = await collectForEach(
    (args) => c.getTemplateFieldDefinitionsForEach(args),
    { repoId, templateId: t.id },
    1,
  );
  sameItems(fieldsEach.items, unpaged, byId, `fields of ${t.name}, ForEach (1)`);
  eq(fieldsEach.pages, unpaged.length, 'pages of 1');
  const fieldsPaged = await collectNextLink(
    (prefer) => c.getTemplateFieldDefinitionsByTemplateName({ repoId, templateName: t.name, prefer }),
    (args) => c.getTemplateFieldDefinitionsByTemplateNameNextLink(args),
    1,
  );
  sameItems(fieldsPaged.items, unpaged, byId, `fields of ${t.name} by name, NextLink (1)`);
});

await checks.run('getAuditReasons: {deleteEntry: [...], exportDocument: [...]} of WAuditReason', async () => {
  const reasons = await auditReasonsClient.getAuditReasons({ repoId });
  assert(reasons?.deleteEntry?.length > 0, `deleteEntry: ${short(reasons?.deleteEntry)}`);
  assert(reasons.exportDocument?.length > 0, `exportDocument: ${short(reasons.exportDocument)}`);
  for (const r of [...reasons.deleteEntry, ...reasons.exportDocument]) {
    eq(r.constructor.name, 'WAuditReason', 'client class');
    assert(Number.isInteger(r.id) && r.name, `audit reason ${short(r)}`);
  }
  const ids = new Set(reasons.exportDocument.map(byId));
  assert(!reasons.deleteEntry.some((r) => ids.has(r.id)), 'a reason is listed for both kinds');
  deleteReasons = reasons.deleteEntry;
});

await checks.run('attributes: everyone NextLink (1) and ForEach (10), the user\'s own, one by key', async () => {
  const c = attributesClient;
  const key = (a) => a.key;
  const everyone = await c.getTrusteeAttributeKeyValuePairs({ repoId, everyone: true });
  assert(everyone?.value?.length >= 2, `attributes for everyone: ${short(everyone?.value)}`);
  const paged = await collectNextLink(
    (prefer) => c.getTrusteeAttributeKeyValuePairs({ repoId, everyone: true, prefer }),
    (args) => c.getTrusteeAttributeKeyValuePairsNextLink(args),
    1,
  );
  sameItems(paged.items, everyone.value, key, 'NextLink (1)');
  const each = await collectForEach(
    (args) => c.getTrusteeAttributeKeyValuePairsForEach(args),
    { repoId, everyone: true },
    10,
  );
  sameItems(each.items, everyone.value, key, 'ForEach (10)');
  const own = await c.getTrusteeAttributeKeyValuePairs({ repoId });
  assert(own?.value?.length >= 1, `the user's own attributes: ${short(own?.value)}`);
  const one = await c.getTrusteeAttributeValueByKey({ repoId, attributeKey: own.value[0].key });
  eq(one.constructor.name, 'Attribute', 'client class');
  eq(one.value, own.value[0].value, `value of ${own.value[0].key}`);
  const shared = await c.getTrusteeAttributeValueByKey({ repoId, attributeKey: everyone.value[0].key, everyone: true });
  eq(shared.value, everyone.value[0].value, `value of ${everyone.value[0].key} for everyone`);
});

await checks.run('sample INV-0001.txt: template Invoice, Vendor Acme Corp, tag Reviewed, a link', async () => {
  const found = await entryAt(INVOICE_PATH);
  const invoice = await entriesClient.getEntry({ repoId, entryId: found.id });
  eq(invoice.templateName, 'Invoice', 'templateName');
  assert(invoice.templateFieldNames?.includes('Vendor'), `templateFieldNames: ${short(invoice.templateFieldNames)}`);
  const fields = await entriesClient.getFieldValues({ repoId, entryId: invoice.id });
  const vendor = fields.value.find((f) => f.fieldName === 'Vendor');
  eq(vendor?.constructor.name, 'FieldValue', 'client class');
  eq(JSON.stringify(vendor.values), JSON.stringify([{ value: 'Acme Corp', position: 1 }]), 'values of Vendor');
  eq(vendor.isRequired, true, 'isRequired of Vendor');
  eq(vendor.fieldType, 'String', 'fieldType');
  const tags = await entriesClient.getTagsAssignedToEntry({ repoId, entryId: invoice.id });
  assert(tags.value.some((t) => t.name === 'Reviewed'), `tags: ${short(tags.value.map((t) => t.name))}`);
  const agreement = await entryAt(AGREEMENT_PATH);
  const links = await entriesClient.getLinkValuesFromEntry({ repoId, entryId: invoice.id });
  const link = links.value.find((k) => k.targetId === agreement.id);
  assert(link, `no link to ${AGREEMENT_PATH}: ${short(links.value)}`);
  eq(link.constructor.name, 'WEntryLinkInfo', 'client class');
  eq(link.sourceId, invoice.id, 'sourceId');
  eq(link.targetFullPath, AGREEMENT_PATH, 'targetFullPath');
  assert(Number.isInteger(link.linkId) && Number.isInteger(link.linkTypeId), `linkId, linkTypeId: ${short(link)}`);
});

await checks.run('getEntryListing with fields [Vendor, Amount]: each invoice carries their values', async () => {
  const folder = await entryAt(INVOICES_PATH);
  const listing = await entriesClient.getEntryListing({ repoId, entryId: folder.id, fields: ['Vendor', 'Amount'] });
  const invoices = listing.value.filter((e) => e.templateName === 'Invoice');
  assert(invoices.length >= 2, `invoices in ${INVOICES_PATH}: ${short(listing.value.map((e) => e.name))}`);
  for (const e of invoices) {
    const names = (e.fields ?? []).map((f) => f.fieldName).sort().join(',');
    eq(names, 'Amount,Vendor', `fields of ${e.name} in the listing`);
    const values = await entriesClient.getFieldValues({ repoId, entryId: e.id });
    const vendor = e.fields.find((f) => f.fieldName === 'Vendor');
    const read = values.value.find((f) => f.fieldName === 'Vendor');
    eq(JSON.stringify(vendor.values), JSON.stringify(read.values), `Vendor of ${e.name}`);
  }
});

await checks.run('assignFieldValues {Vendor, Keywords (3 values)}: the answer and getFieldValues', async () => {
  need(work, 'the work folder');
  valued = await createFolder(work.id, 'metadata', true);
  const wanted = { Vendor: ['Initech'], Keywords: ['one', 'two', 'three'] };
  const answer = await entriesClient.assignFieldValues({
    repoId,
    entryId: valued.id,
    fieldsToUpdate: fieldsToUpdate(wanted),
  });
  eq(JSON.stringify(v1Fields(answer)), JSON.stringify(wanted), 'fields in the answer');
  const read = await entriesClient.getFieldValues({ repoId, entryId: valued.id });
  eq(JSON.stringify(v1Fields(read)), JSON.stringify(wanted), 'fields read back');
  const keywords = read.value.find((f) => f.fieldName === 'Keywords');
  eq(keywords.isMultiValue, true, 'isMultiValue of Keywords');
  eq(keywords.values.map((v) => v.position).join(','), '1,2,3', 'positions of Keywords');
  const entry = await entriesClient.getEntry({ repoId, entryId: valued.id });
  eq(entry.fields?.map((f) => f.fieldName).sort().join(','), 'Keywords,Vendor', 'the entry\'s fields');
});

await checks.run('assignFieldValues with Amount "abc": 400 naming Amount, the entry\'s fields unchanged', async () => {
  need(valued, 'the folder with fields');
  const before = v1Fields(await entriesClient.getFieldValues({ repoId, entryId: valued.id }));
  const err = await expectApiException(
    entriesClient.assignFieldValues({
      repoId,
      entryId: valued.id,
      fieldsToUpdate: fieldsToUpdate({ Vendor: ['changed'], Amount: ['abc'] }),
    }),
    400,
  );
  assertServerProblem(err, 400);
  assertNames(err, 'Amount');
  const after = v1Fields(await entriesClient.getFieldValues({ repoId, entryId: valued.id }));
  eq(JSON.stringify(after), JSON.stringify(before), 'fields after the refused assignment');
});

await checks.run('assignTags (2 non-secure tags), getTagsAssignedToEntry', async () => {
  need(valued, 'the folder with fields');
  need(infoTags, 'two non-secure tag definitions');
  const names = infoTags.map((t) => t.name);
  const tagsToAdd = new PutTagRequest({ tags: names });
  const answer = await entriesClient.assignTags({ repoId, entryId: valued.id, tagsToAdd });
  eq(answer.value?.map((t) => t.name).sort().join(','), [...names].sort().join(','), 'tags in the answer');
  eq(answer.value[0].constructor.name, 'WTagInfo', 'client class');
  const read = await entriesClient.getTagsAssignedToEntry({ repoId, entryId: valued.id });
  eq(read.value.map((t) => t.name).sort().join(','), [...names].sort().join(','), 'tags read back');
});

await checks.run('assignEntryLinks [{targetId, linkTypeId}] x2; getLinkValuesFromEntry at both ends', async () => {
  need(valued, 'the folder with fields');
  need(linkTypes, 'the link definitions');
  linkTargets = [];
  for (const name of ['link target 1', 'link target 2']) linkTargets.push(await createFolder(work.id, name, true));
  const types = [1, linkTypes.find((d) => d.linkTypeId !== 1).linkTypeId];
  const answer = await entriesClient.assignEntryLinks({
    repoId,
    entryId: valued.id,
    linksToAdd: linkTargets.map((t, i) => new PutLinksRequest({ targetId: t.id, linkTypeId: types[i] })),
  });
  eq(answer.value?.length, 2, 'links in the answer');
  for (const [i, t] of linkTargets.entries()) {
    const link = answer.value.find((k) => k.targetId === t.id);
    assert(link, `no link to ${t.id} in the answer: ${short(answer.value)}`);
    eq(link.sourceId, valued.id, 'sourceId');
    eq(link.linkTypeId, types[i], 'linkTypeId');
    const type = linkTypes.find((d) => d.linkTypeId === types[i]);
    eq(link.sourceLabel, type.sourceLabel, 'sourceLabel');
    eq(link.targetLabel, type.targetLabel, 'targetLabel');
  }
  const read = await entriesClient.getLinkValuesFromEntry({ repoId, entryId: valued.id });
  const linkIds = (list) => list.value.map((k) => k.linkId).sort().join(',');
  eq(linkIds(read), linkIds(answer), 'links read back');
  const atTarget = await entriesClient.getLinkValuesFromEntry({ repoId, entryId: linkTargets[0].id });
  eq(atTarget.value.length, 1, 'links listed at the first target');
  eq(atTarget.value[0].sourceId, valued.id, 'sourceId of the link listed at its target');
});

await checks.run('fields, tags and links of an entry: the NextLink (1) and ForEach (10) helpers', async () => {
  need(linkTargets, 'the folder with 2 fields, 2 tags and 2 links');
  const c = entriesClient;
  const args = { repoId, entryId: valued.id };
  const collections = [
    [
      'fields',
      (o) => c.getFieldValues({ ...args, ...o }),
      (a) => c.getFieldValuesNextLink(a),
      (a) => c.getFieldValuesForEach(a),
      (f) => f.fieldName,
    ],
    [
      'tags',
      (o) => c.getTagsAssignedToEntry({ ...args, ...o }),
      (a) => c.getTagsAssignedToEntryNextLink(a),
      (a) => c.getTagsAssignedToEntryForEach(a),
      byId,
    ],
    [
      'links',
      (o) => c.getLinkValuesFromEntry({ ...args, ...o }),
      (a) => c.getLinkValuesFromEntryNextLink(a),
      (a) => c.getLinkValuesFromEntryForEach(a),
      (k) => k.linkId,
    ],
  ];
  for (const [name, list, nextLink, forEach, key] of collections) {
    const unpaged = (await list({})).value;
    eq(unpaged.length, 2, `${name} of the folder`);
    const paged = await collectNextLink((prefer) => list({ prefer }), nextLink, 1);
    sameItems(paged.items, unpaged, key, `${name}, NextLink (1)`);
    eq(paged.pages, 2, `${name}: pages of 1`);
    const each = await collectForEach(forEach, args, 10);
    sameItems(each.items, unpaged, key, `${name}, ForEach (10)`);
  }
});

await checks.run('writeTemplateValueToEntry Invoice (with fields), deleteAssignedTemplate: templateId 0', async () => {
  need(work, 'the work folder');
  const e = await createFolder(work.id, 'template', true);
  const err = await expectApiException(
    entriesClient.writeTemplateValueToEntry({
      repoId,
      entryId: e.id,
      request: new PutTemplateRequest({ templateName: 'Invoice' }),
    }),
    400,
  );
  assertNames(err, 'Vendor');
  const request = new PutTemplateRequest({
    templateName: 'Invoice',
    fields: fieldsToUpdate({ Vendor: ['Umbrella'], Status: ['Paid'] }),
  });
  const set = await entriesClient.writeTemplateValueToEntry({ repoId, entryId: e.id, request });
  eq(set.id, e.id, 'id');
  eq(set.templateName, 'Invoice', 'templateName');
  const invoice = templates?.find((t) => t.name === 'Invoice');
  if (invoice) eq(set.templateId, invoice.id, 'templateId');
  assert(set.templateFieldNames?.includes('Vendor'), `templateFieldNames: ${short(set.templateFieldNames)}`);
  const fields = v1Fields(await entriesClient.getFieldValues({ repoId, entryId: e.id }));
  eq(JSON.stringify(fields.Vendor), '["Umbrella"]', 'Vendor');
  eq(JSON.stringify(fields.Status), '["Paid"]', 'Status');
  const removed = await entriesClient.deleteAssignedTemplate({ repoId, entryId: e.id });
  eq(removed.id, e.id, 'id');
  eq(removed.templateId, 0, 'templateId after deleteAssignedTemplate');
  assert([undefined, null, ''].includes(removed.templateName), `templateName: ${removed.templateName}`);
  eq((await entriesClient.getEntry({ repoId, entryId: e.id })).templateId, 0, 'templateId read back');
});

await checks.run('what v1 set, v2 reads (GET v2 Fields, Tags, Links)', async () => {
  need(linkTargets, 'the folder with 2 fields, 2 tags and 2 links');
  const fields = await v2Request('GET', `/Entries/${valued.id}/Fields`);
  const byName = Object.fromEntries(fields.value.map((f) => [f.name, f.values]));
  eq(JSON.stringify(byName), JSON.stringify({ Vendor: ['Initech'], Keywords: ['one', 'two', 'three'] }), 'v2 fields');
  const tags = await v2Request('GET', `/Entries/${valued.id}/Tags`);
  eq(tags.value.map((t) => t.name).sort().join(','), infoTags.map((t) => t.name).sort().join(','), 'v2 tags');
  const links = await v2Request('GET', `/Entries/${valued.id}/Links`);
  eq(links.value.map((k) => k.targetId).sort().join(','), linkTargets.map(byId).sort().join(','), 'v2 link targets');
  for (const k of links.value) eq(k.sourceId, valued.id, 'v2 sourceId');
});

await checks.run('what v2 sets (PUT v2 Fields, Tags, Links, Template), v1 reads with the client', async () => {
  need(linkTargets, 'the folder with 2 fields, 2 tags and 2 links');
  const e = await createFolder(work.id, 'set through v2', true);
  await v2Request('PUT', `/Entries/${e.id}/Fields`, { fields: [{ name: 'Notes', values: ['from v2'] }] });
  await v2Request('PUT', `/Entries/${e.id}/Tags`, { tags: [infoTags[1].name] });
  await v2Request('PUT', `/Entries/${e.id}/Links`, {
    links: [{ linkDefinitionId: 1, otherEntryId: linkTargets[1].id, isSource: false }],
  });
  await v2Request('PUT', `/Entries/${e.id}/Template`, { templateName: 'General' });
  const entry = await entriesClient.getEntry({ repoId, entryId: e.id });
  eq(entry.templateName, 'General', 'v1 templateName');
  const fields = v1Fields(await entriesClient.getFieldValues({ repoId, entryId: e.id }));
  eq(JSON.stringify(fields.Notes), '["from v2"]', 'v1 Notes');
  const tags = await entriesClient.getTagsAssignedToEntry({ repoId, entryId: e.id });
  eq(tags.value.map((t) => t.name).join(','), infoTags[1].name, 'v1 tags');
  const links = await entriesClient.getLinkValuesFromEntry({ repoId, entryId: e.id });
  eq(links.value.length, 1, 'v1 links');
  // isSource false: the other entry is the source
  eq(links.value[0].sourceId, linkTargets[1].id, 'v1 sourceId');
  eq(links.value[0].targetId, e.id, 'v1 targetId');
  eq(links.value[0].linkTypeId, 1, 'v1 linkTypeId');
});

await checks.run('deleteEntryInfo of a link target with a DeleteEntry audit reason: its link goes', async () => {
  need(linkTargets, 'the folder with 2 links');
  const reason = need(deleteReasons, 'the DeleteEntry audit reasons')[0];
  const accepted = await entriesClient.deleteEntryInfo({
    repoId,
    entryId: linkTargets[0].id,
    request: new DeleteEntryWithAuditReason({ auditReasonId: reason.id, comment: 'compat stage' }),
  });
  assert(accepted?.token, `deleteEntryInfo answered no token: ${JSON.stringify(accepted)}`);
  eq((await waitForOperation(accepted.token)).status, 'Completed', 'status');
  await expectApiException(entriesClient.getEntry({ repoId, entryId: linkTargets[0].id }), 404);
  const links = await entriesClient.getLinkValuesFromEntry({ repoId, entryId: valued.id });
  eq(links.value.map((k) => k.targetId).join(','), String(linkTargets[1].id), 'links left on the source');
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

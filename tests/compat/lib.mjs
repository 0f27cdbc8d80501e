// Helpers shared by v1.mjs and v2.mjs: arguments, named checks, assertions and a log of the requests
// the clients send. No test framework: each check prints one line, `ok - name` or `not ok - name: reason`.
import { createHash, randomBytes } from 'node:crypto';

const USAGE = `usage: node --import ./register.mjs <script> BASE_URL [REPOSITORY_ID] [USERNAME] [PASSWORD]
  (or --base-url, --repository-id, --username, --password; or the environment variables
   LF_COMPAT_BASE_URL, LF_COMPAT_REPOSITORY_ID, LF_COMPAT_USERNAME, LF_COMPAT_PASSWORD)
  defaults: repository r-sandbox, user admin, password admin`;

/** The server to drive: flags first, then positional arguments, then the environment, then defaults. */
export function parseArgs(argv = process.argv.slice(2), env = process.env) {
  const flags = {};
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-h' || arg === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq > 0) flags[arg.slice(2, eq)] = arg.slice(eq + 1);
      else flags[arg.slice(2)] = argv[++i];
    } else {
      positional.push(arg);
    }
  }
  const pick = (flag, index, envName, fallback) =>
    flags[flag] ?? positional[index] ?? env[envName] ?? fallback;
  const config = {
    baseUrl: pick('base-url', 0, 'LF_COMPAT_BASE_URL'),
    repositoryId: pick('repository-id', 1, 'LF_COMPAT_REPOSITORY_ID', 'r-sandbox'),
    username: pick('username', 2, 'LF_COMPAT_USERNAME', 'admin'),
    password: pick('password', 3, 'LF_COMPAT_PASSWORD', 'admin'),
  };
  if (!config.baseUrl) {
    console.error(USAGE);
    process.exit(2);
  }
  config.baseUrl = config.baseUrl.replace(/\/+$/, '');
  return config;
}

// --------------------------------------------------------------------------- request log

/** Every request any client sent through the global fetch: {method, url, status, auth, pace}. */
export const requests = [];

/**
 * Wrap the global fetch (which both clients and their token client call) to log each request. Only the
 * method, URL, status and whether an Authorization header was present are kept, never the token.
 */
export function tapFetch() {
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init = {}) => {
    const url = typeof input === 'string' ? input : input.url;
    const headers = new Headers(init.headers ?? {});
    const record = {
      method: (init.method ?? 'GET').toUpperCase(),
      url,
      status: undefined,
      auth: headers.has('authorization'),
      pace: headers.get('sandbox-pace-ms'),
    };
    requests.push(record);
    try {
      const response = await realFetch(input, init);
      record.status = response.status;
      return response;
    } catch (err) {
      record.status = `fetch failed: ${err.message}`;
      throw err;
    }
  };
}

/** Requests to the sign-in route (`POST /v1/Repositories/{id}/Token`), for both dialects. */
export function signIns(since = 0) {
  return requests.slice(since).filter((r) => r.method === 'POST' && /\/v1\/Repositories\/[^/]+\/Token$/.test(r.url));
}

// --------------------------------------------------------------------------- checks

/** Run named checks one after another; print one line each; set the exit code at the end. */
export class Checks {
  constructor(title) {
    this.passed = 0;
    this.failed = 0;
    console.log(`# ${title}`);
  }

  /** Run `fn`; it passes unless it throws or takes longer than `timeoutMs`. Returns its result, or undefined. */
  async run(name, fn, { timeoutMs = 90_000 } = {}) {
    const logStart = requests.length;
    try {
      const result = await withTimeout(fn(), timeoutMs);
      this.passed++;
      console.log(`ok - ${name}`);
      return result;
    } catch (err) {
      this.failed++;
      console.log(`not ok - ${name}: ${describe(err)}`);
      // the last few requests of this check, as comments, to see what the server answered
      for (const r of requests.slice(logStart).slice(-4)) {
        console.log(`#   ${r.method} ${r.url} -> ${r.status ?? 'no answer yet'}`);
      }
      return undefined;
    }
  }

  finish() {
    console.log(`# ${this.passed} passed, ${this.failed} failed`);
    process.exitCode = this.failed > 0 ? 1 : 0;
  }
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** One line about an error: an ApiException's status, title and detail, or the error's message. */
export function describe(err) {
  if (err && typeof err === 'object' && 'status' in err && 'problemDetails' in err) {
    const pd = err.problemDetails ?? {};
    const detail = pd.detail ? ` (${pd.detail})` : '';
    return oneLine(`ApiException ${err.status}: ${err.message}${detail}`);
  }
  if (err instanceof Error) {
    return oneLine(err.name === 'Error' || err.name === 'CheckFailed' ? err.message : `${err.name}: ${err.message}`);
  }
  return oneLine(String(err));
}

function oneLine(text) {
  return text.replace(/\s+/g, ' ').trim();
}

// --------------------------------------------------------------------------- assertions

export class CheckFailed extends Error {
  constructor(message) {
    super(message);
    this.name = 'CheckFailed';
  }
}

export function assert(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

export function eq(actual, expected, what) {
  if (actual !== expected) {
    throw new CheckFailed(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/** A value an earlier check should have produced; fails this check clearly when it did not. */
export function need(value, what) {
  if (value === undefined || value === null) throw new CheckFailed(`needs ${what} (an earlier check failed)`);
  return value;
}

/**
 * A generated client operation resolves to null when the server answers 200 or 204 where the operation
 * expects another success status (201, 202): fail with the status the server gave.
 */
export function answered(result, call) {
  if (result === null || result === undefined) {
    const last = requests.at(-1);
    throw new CheckFailed(
      `${call} returned ${result}: the server answered ${last?.status} to ${last?.method} ${last?.url}, ` +
        'a status this operation does not expect',
    );
  }
  return result;
}

/** Await `promise`, which must reject with an ApiException of `status`; returns the exception. */
export async function expectApiException(promise, status) {
  let result;
  try {
    result = await promise;
  } catch (err) {
    if (err && typeof err === 'object' && 'status' in err && 'problemDetails' in err) {
      if (err.status !== status) throw new CheckFailed(`expected ApiException ${status}, got ${describe(err)}`);
      return err;
    }
    throw new CheckFailed(`expected ApiException ${status}, got ${describe(err)}`);
  }
  throw new CheckFailed(`expected ApiException ${status}, but the call succeeded: ${short(result)}`);
}

/** Assert that an ApiException carries the server's own problem body, not the client's substitute. */
export function assertServerProblem(err, status) {
  const pd = err.problemDetails;
  assert(pd, 'the exception has no problemDetails');
  eq(pd.status, status, 'problemDetails.status');
  assert(typeof pd.title === 'string' && pd.title.length > 0, `problemDetails.title is ${JSON.stringify(pd.title)}`);
  // the client substitutes {title, status, operationId} when the body has no numeric status; the
  // server's own problem also carries type, detail and traceId
  for (const key of ['type', 'detail', 'traceId']) {
    assert(pd[key] !== undefined, `problemDetails.${key} is missing (not the server's problem body?)`);
  }
}

export function short(value) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text === undefined ? String(value) : text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

// --------------------------------------------------------------------------- paging helpers

/**
 * Every item of a collection through one of a client's `...ForEach` helpers: `forEach(args)` is called with
 * `maxPageSize` and a callback that checks each page (a `value` array of at most `maxPageSize` items).
 * Returns {items, pages}.
 */
export async function collectForEach(forEach, args, maxPageSize) {
  const items = [];
  let pages = 0;
  await forEach({
    ...args,
    maxPageSize,
    callback: async (page) => {
      pages++;
      assert(Array.isArray(page?.value), `page ${pages} has no value array: ${short(page)}`);
      assert(page.value.length <= maxPageSize, `page ${pages} has ${page.value.length} items (max ${maxPageSize})`);
      items.push(...page.value);
      return pages < 1000;
    },
  });
  return { items, pages };
}

/**
 * Every item of a collection page by page: `first(prefer)` lists the first page (with `Prefer: maxpagesize=N`),
 * then `nextLink({nextLink, maxPageSize})` (a client's `...NextLink` helper) follows each absolute
 * `@odata.nextLink` until a page has none. Returns {items, pages}.
 */
export async function collectNextLink(first, nextLink, maxPageSize) {
  const items = [];
  let pages = 0;
  let page = await first(`maxpagesize=${maxPageSize}`);
  for (;;) {
    pages++;
    assert(Array.isArray(page?.value), `page ${pages} has no value array: ${short(page)}`);
    assert(page.value.length <= maxPageSize, `page ${pages} has ${page.value.length} items (max ${maxPageSize})`);
    items.push(...page.value);
    const link = page.odataNextLink;
    if (!link) return { items, pages };
    assert(link.startsWith('http'), `@odata.nextLink of page ${pages} is not absolute: ${link}`);
    assert(pages < 1000, 'more than 1000 pages');
    page = await nextLink({ nextLink: link, maxPageSize });
  }
}

/** Assert that paging visited the same items as the unpaged listing, each once, in the same order. */
export function sameItems(paged, unpaged, key, what) {
  const seen = paged.map(key);
  eq(new Set(seen).size, seen.length, `${what}: distinct items over all pages (one repeated?)`);
  eq(seen.join(' | '), unpaged.map(key).join(' | '), `${what}: items over all pages`);
}

// --------------------------------------------------------------------------- bytes

/** The body of a fetch Response, as a Buffer. */
export async function bodyBytes(response) {
  return Buffer.from(await response.arrayBuffer());
}

/** Assert that two Buffers hold the same bytes; otherwise say both sizes and where they first differ. */
export function sameBytes(actual, expected, what) {
  if (Buffer.compare(actual, expected) === 0) return;
  const common = Math.min(actual.length, expected.length);
  let at = 0;
  while (at < common && actual[at] === expected[at]) at++;
  throw new CheckFailed(
    `${what}: ${actual.length} bytes where ${expected.length} were expected, the first difference at byte ${at}`,
  );
}

/** The MD5 of some bytes, in hex (what an S3-style part upload answers as the part's ETag). */
export function md5Hex(bytes) {
  return createHash('md5').update(bytes).digest('hex');
}

// --------------------------------------------------------------------------- misc

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A name no earlier run used, so that reruns against the same repository pass. */
export function uniqueName(prefix) {
  return `${prefix} ${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Send `headers` with every request `fn` makes through `client`, then put the client's own default headers
 * back (the clients read defaultRequestHeaders when each request starts).
 */
export async function withHeaders(client, headers, fn) {
  const saved = client.defaultRequestHeaders;
  client.defaultRequestHeaders = { ...saved, ...headers };
  try {
    return await fn();
  } finally {
    client.defaultRequestHeaders = saved;
  }
}

/** A small text file as both clients' FileParameter: {data: Blob, fileName}. */
export function fileParameter(text, fileName, type = 'text/plain') {
  return { data: new Blob([text], { type }), fileName };
}

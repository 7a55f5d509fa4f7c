import { readFile } from 'node:fs/promises';
import { resolve, sep } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
/** Folders the FIXTURES binding may read from. */
const ALLOWED = ['test/fixtures', 'models/out'].map((dir) => resolve(ROOT, dir) + sep);

/** Serves `GET http://fixtures/<repo-relative path>` from disk to tests running in workerd. */
export async function serveFixture(request: Request): Promise<Response> {
  const path = resolve(ROOT, decodeURIComponent(new URL(request.url).pathname.slice(1)));
  if (!ALLOWED.some((dir) => path.startsWith(dir))) return new Response('forbidden', { status: 403 });
  try {
    return new Response(await readFile(path));
  } catch {
    return new Response(`no fixture ${path}`, { status: 404 });
  }
}

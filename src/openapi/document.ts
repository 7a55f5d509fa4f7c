/**
 * `GET /openapi.json` (OpenAPI 3.1, generated from the routes' own schemas) and `GET /docs`
 * (Scalar's reference page for it). Both are open like /ping: the document describes only the
 * API's shape, which the source already publishes, and tools (client generators, the docs page)
 * fetch it without a key; the key is still asked for by every route it describes.
 */
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import { version } from '../../package.json';
import { errors } from './responses';
import { SYNTHETIC_NOTICE } from '../answers';

export const DOCUMENT_PATH = '/openapi.json';
export const DOCS_PATH = '/docs';

/** Paths that need no API key (src/app.ts). */
export const DOC_PATHS: ReadonlySet<string> = new Set([DOCUMENT_PATH, DOCS_PATH]);

/** Methods for the app's 405s (src/app.ts METHODS). */
export const DOC_METHODS: Array<[path: string, allow: string]> = [
  [DOCUMENT_PATH, 'GET'],
  [DOCS_PATH, 'GET'],
];

/** The security schemes of auth's two headers (src/middleware/auth). */
export const SECURITY_SCHEMES = {
  bearer: { type: 'http', scheme: 'bearer', description: '`Authorization: Bearer <API_KEY>`' },
  apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: '`X-API-Key: <API_KEY>`' },
} as const;

/** Either header will do. Open routes override this with `security: []`. */
const SECURITY: Array<Record<string, string[]>> = [{ bearer: [] }, { apiKey: [] }];

/** Open routes: no key asked for. */
export const OPEN: { security: Array<Record<string, string[]>> } = { security: [] };

const DESCRIPTION = `ImageNet classification with ONNX model zoo ResNets on Cloudflare Workers.

**Weights.** ${SYNTHETIC_NOTICE} Such answers say so: \`weights: "synthetic"\` and \`notice\` in the native shapes, \`X-Model-Weights: synthetic\` and \`Warning\` headers on every shape.

**Auth.** When the Worker's API_KEY is set, every route but the health checks (/ping, /v2/health/*) and this documentation asks for it, as \`Authorization: Bearer <key>\` or \`X-API-Key: <key>\`; without API_KEY nothing does.

**Errors.** Every error is \`{ code, type, message }\` (schema \`Error\`), but under /v2, where it is the Open Inference Protocol's \`{ error }\`. A method a path does not answer gets **405** \`method_not_allowed\` with an \`Allow\` header; a path the API does not have, 404 \`not_found\`.

**Request ids.** Every answer carries \`X-Request-Id\` (a caller's own is kept when it is a sane token), which the Worker's log lines carry too.

**Images.** Multipart (field \`data\`, one file or several classified as one batch, or any single file field), a raw body (\`Content-Type: image/*\` or \`application/octet-stream\`), or JSON \`{ "url": ... }\` fetched by the Worker. JPEG, PNG, WebP and GIF.`;

/** What the document says about the API, beside its paths and components. */
const objectConfig = {
  openapi: '3.1.0',
  info: { title: 'edge-resnet', version, description: DESCRIPTION, license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } },
  // Relative: the API is wherever this document was fetched from.
  servers: [{ url: '/' }],
  security: SECURITY,
  tags: [
    { name: 'predict', description: 'Classification: the native shape and the model-server and TorchServe shapes.' },
    { name: 'moderate', description: 'Classification under a moderation policy, now or as a queued job.' },
    { name: 'catalogue', description: 'Models, policies and concepts.' },
    { name: 'health' },
    { name: 'v2', description: 'The Open Inference Protocol (KServe v2), as Triton serves it.' },
    { name: 'docs' },
  ],
};

/** The app's document; generated once per app, since its routes do not change. */
const documents = new WeakMap<OpenAPIHono<any, any, any>, unknown>();

export function openApiDocument(app: OpenAPIHono<any, any, any>): unknown {
  let doc = documents.get(app);
  if (!doc) {
    // The generator knows components only as schemas: the security schemes are added after.
    const generated = app.getOpenAPI31Document(objectConfig);
    doc = { ...generated, components: { ...generated.components, securitySchemes: SECURITY_SCHEMES } };
    documents.set(app, doc);
  }
  return doc;
}

const documentRoute = createRoute({
  method: 'get',
  path: DOCUMENT_PATH,
  tags: ['docs'],
  summary: 'This document (OpenAPI 3.1)',
  ...OPEN,
  responses: { 200: { description: 'The OpenAPI document.', content: { 'application/json': { schema: z.looseObject({ openapi: z.string() }) } } }, ...errors(500) },
});

const docsRoute = createRoute({
  method: 'get',
  path: DOCS_PATH,
  tags: ['docs'],
  summary: 'API reference (Scalar)',
  description: 'An HTML page that renders /openapi.json; its script is loaded from a CDN (jsDelivr).',
  ...OPEN,
  responses: { 200: { description: 'HTML.', content: { 'text/html': { schema: z.string() } } }, ...errors(500) },
});

/** The two routes; `app` is the app whose document they serve (routes mounted later included). */
export function docRoutes(app: OpenAPIHono<any, any, any>) {
  const docs = new OpenAPIHono();
  docs.openapi(documentRoute, (c) => c.json(openApiDocument(app) as { openapi: string }, 200));
  // Documented through the registry; Scalar's middleware answers it.
  docs.openAPIRegistry.registerPath(docsRoute);
  docs.get(DOCS_PATH, Scalar({ url: DOCUMENT_PATH, pageTitle: 'edge-resnet API' }));
  return docs;
}

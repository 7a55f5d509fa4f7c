/**
 * An upload endpoint that moderates images before accepting them, by calling edge-resnet's
 * `Classifier` entrypoint over a service binding (RPC: no HTTP hop, no API key).
 *
 *   POST /upload              the image as the raw body, or as multipart field "file" (or "data")
 *   POST /upload?policy=name  another stored policy (when ALLOW_POLICY_PARAM is "true")
 *
 * 201: accepted (decision allow, or flag: accepted and marked for review).
 * 422: refused, the policy blocked it; the body says which rules fired.
 * The classifier's own errors pass through with their status (400, 413, 415, 422, 503 ...).
 * A real service would store the accepted bytes (R2, ...) where this example only answers.
 */
import type { ClassifierService, ModerateBody, RpcError } from 'edge-resnet/rpc';

interface Env {
  CLASSIFIER: ClassifierService;
  POLICY?: string;
  ALLOW_POLICY_PARAM?: string;
  MAX_UPLOAD_BYTES?: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/') {
      return Response.json({ service: 'moderation-consumer', upload: 'POST /upload (raw body or multipart field "file")' });
    }
    if (url.pathname !== '/upload') return problem(404, 'not_found', `no route for ${request.method} ${url.pathname}`);
    if (request.method !== 'POST') return problem(405, 'method_not_allowed', 'use POST', { Allow: 'POST' });

    const image = await readUpload(request, Number(env.MAX_UPLOAD_BYTES || 10 * 1024 * 1024));
    if (image instanceof Response) return image;

    const named = url.searchParams.get('policy');
    if (named !== null && env.ALLOW_POLICY_PARAM !== 'true') return problem(400, 'bad_request', 'this service applies its own policy');
    const policy = named ?? (env.POLICY || undefined);

    // Errors thrown across RPC keep only their message, so the entrypoint answers a value.
    const result = await env.CLASSIFIER.moderate(image, policy);
    if (!result.ok) return classifierError(result.error);
    return decide(result);
  },
} satisfies ExportedHandler<Env>;

/** One image is sent per upload, so the first result is the decision. */
function decide(answer: ModerateBody): Response {
  const [image] = answer.images;
  if (!image) return problem(502, 'bad_gateway', 'the classifier answered no image');
  const body = {
    accepted: image.decision !== 'block',
    decision: image.decision,
    // A flagged upload is taken but should be looked at by a person.
    review: image.decision === 'flag',
    triggered: image.triggered,
    policy: answer.policy,
    model: { id: answer.model.id, weights: answer.model.weights },
    // With synthetic weights the decision says nothing about the image: pass that on.
    ...(answer.notice ? { notice: answer.notice } : {}),
    image: { width: image.width, height: image.height },
  };
  return Response.json(body, { status: body.accepted ? 201 : 422 });
}

/** The image bytes, or the answer refusing the request. */
async function readUpload(request: Request, maxBytes: number): Promise<Uint8Array | Response> {
  const declared = Number(request.headers.get('Content-Length') ?? NaN);
  if (declared > maxBytes) return problem(413, 'payload_too_large', `upload over ${maxBytes} bytes`);
  let bytes: Uint8Array;
  if (/^multipart\/form-data/i.test(request.headers.get('Content-Type') ?? '')) {
    let form: FormData;
    try {
      form = await request.formData();
    } catch {
      return problem(400, 'bad_request', 'malformed multipart body');
    }
    const file = form.get('file') ?? form.get('data');
    if (file === null || typeof file === 'string') return problem(400, 'bad_request', 'send the image in the multipart file field "file"');
    bytes = new Uint8Array(await file.arrayBuffer());
  } else {
    bytes = new Uint8Array(await request.arrayBuffer());
  }
  if (bytes.byteLength > maxBytes) return problem(413, 'payload_too_large', `upload over ${maxBytes} bytes`);
  if (bytes.byteLength === 0) return problem(400, 'bad_request', 'no image: send it as the body or as multipart field "file"');
  return bytes;
}

/** The classifier's refusal, with its status: the caller's image or policy is at fault, or the classifier is busy. */
function classifierError(error: RpcError): Response {
  const headers: Record<string, string> = error.retryAfter === undefined ? {} : { 'Retry-After': String(error.retryAfter) };
  // The classifier's 500s are its own bugs: to this service's clients, an upstream failure.
  if (error.code >= 500 && error.type !== 'overloaded' && error.type !== 'model_unavailable') {
    return problem(502, 'bad_gateway', 'the classifier failed', headers);
  }
  return Response.json({ accepted: false, error }, { status: error.code, headers });
}

function problem(code: number, type: string, message: string, headers: Record<string, string> = {}): Response {
  return Response.json({ accepted: false, error: { code, type, message } }, { status: code, headers });
}

import { Validator } from '@seriousme/openapi-schema-validator';

/**
 * Validates a POSTed OpenAPI document, for tests running in workerd (test/worker/openapi.test.ts):
 * the validator reads its JSON Schemas from disk and compiles them to code, neither of which
 * workerd allows, so it runs here on the Node side of the pool.
 */
export async function validateOpenApi(request: Request): Promise<Response> {
  const result = await new Validator().validate((await request.json()) as Parameters<Validator["validate"]>[0]);
  return Response.json(result);
}

/**
 * How the image routes' bodies are documented. Never validated here: src/upload reads them by
 * streaming under the body limit, and a validator would buffer or parse them first. Plain
 * schema objects and `$ref`s, unlike zod schemas, make @hono/zod-openapi add no validator (nor
 * its Content-Type gate) to a route: they are only written into the document.
 */
import { z } from '@hono/zod-openapi';
import { ModerateUrlInputSchema, UrlInputSchema } from './schemas';

/** The components the upload bodies refer to, by name (the name their `.openapi()` gave them). */
const COMPONENTS = { UrlInput: UrlInputSchema, ModerateUrlInput: ModerateUrlInputSchema } satisfies Record<string, z.ZodType>;

const ref = (name: keyof typeof COMPONENTS) => ({ $ref: `#/components/schemas/${name}` });

/** Registers them in a route app's registry, so that the `$ref`s resolve in the document. */
export function registerUploadSchemas(registry: { register: (name: string, schema: z.ZodType) => unknown }): void {
  for (const [name, schema] of Object.entries(COMPONENTS)) registry.register(name, schema);
}

const file = { type: 'string', contentMediaType: 'application/octet-stream' } as const;

const IMAGES = {
  type: 'array',
  items: file,
  description: 'One image, or several classified as one batch (at most MAX_IMAGES). Any single file field is taken when there is no `data`.',
} as const;

const raw = (type: string) => ({ schema: { type: 'string', contentMediaType: type } as const });

/** `POST /predict` and the compatibility shapes. */
export const imageBody = {
  required: true,
  description: 'The image(s): multipart, the raw bytes, or a URL for the Worker to fetch. At most MAX_BODY_BYTES (413 over it).',
  content: {
    'multipart/form-data': { schema: { type: 'object', properties: { data: IMAGES } } as const },
    'image/*': raw('image/*'),
    'application/octet-stream': raw('application/octet-stream'),
    'application/json': { schema: ref('UrlInput') },
  },
};

/** `POST /moderate`: the same, and an inline policy in the form or the JSON. */
export const moderateBody = {
  ...imageBody,
  description: `${imageBody.description} An inline policy may come with it: the multipart text field \`policy\` (JSON), or \`policy\` in the JSON body; not with a policy named in the path.`,
  content: {
    ...imageBody.content,
    'multipart/form-data': {
      schema: {
        type: 'object',
        properties: {
          data: IMAGES,
          policy: { type: 'string', contentMediaType: 'application/json', description: 'An inline policy as JSON text (schema `Policy`); curl: `-F "policy=<policy.json"`.' },
        },
      } as const,
    },
    'application/json': { schema: ref('ModerateUrlInput') },
  },
};

/** The headers every classification answer carries, whatever its shape. */
export const answerHeaders = {
  'Server-Timing': { description: 'cache, model, decode, preprocess, inference and total, in ms.', schema: { type: 'string' as const } },
  'X-Model-Id': { description: 'The model that answered.', schema: { type: 'string' as const } },
  'X-Model-Weights': { description: '`real` or `synthetic` (no real classification).', schema: { type: 'string' as const, enum: ['real', 'synthetic'] } },
  'X-Cache': { description: 'HIT when every image was answered from the result cache.', schema: { type: 'string' as const } },
  Warning: { description: 'With synthetic weights: `199 edge-resnet "<notice>"`.', schema: { type: 'string' as const } },
};

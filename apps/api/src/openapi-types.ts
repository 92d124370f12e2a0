/** The types of the OpenAPI document, shared by its builder (openapi.ts) and its HTML page (docs-page.ts). */

/** A JSON Schema object (as emitted by zod). */
export type JsonSchema = Record<string, unknown>;

/** The parts of an OpenAPI 3.1 document this API uses. */
export interface OpenApiDocument {
  openapi: '3.1.0';
  jsonSchemaDialect: string;
  info: { title: string; version: string; description: string };
  tags: { name: string; description: string }[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { securitySchemes: Record<string, Record<string, string>>; schemas: Record<string, JsonSchema> };
}

/** One operation of the OpenAPI document. */
export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description: string;
  tags: string[];
  security: Record<string, string[]>[];
  parameters: { name: string; in: string; required: boolean; description: string; schema: JsonSchema; examples?: Record<string, { value: string | number }> }[];
  requestBody?: { required: true; description: string; content: Record<string, { schema: JsonSchema; examples: Record<string, { summary: string; value: unknown }> }> };
  responses: Record<string, { description: string; headers?: Record<string, { description: string; schema: JsonSchema }>; content?: Record<string, { schema: JsonSchema }> }>;
}

/**
 * `/docs`: the OpenAPI document as one self-contained HTML page, rendered on the server from the
 * document itself (so the page and `/openapi.json` cannot disagree). No script and no external
 * resource: the API runs where there may be no internet, and the page's CSP allows nothing but
 * its own style block.
 */
import type { JsonSchema, OpenApiDocument, OpenApiOperation } from './openapi-types.ts';

/** The page's only style; its hash is in the route's CSP. */
export const DOCS_STYLE = `
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}
main{max-width:980px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin-top:40px;border-bottom:1px solid #d8dee6;padding-bottom:4px}
section.op{background:#fff;border:1px solid #d8dee6;border-radius:6px;padding:12px 16px;margin:16px 0}
.m{display:inline-block;min-width:44px;text-align:center;font-weight:600;border-radius:4px;padding:0 6px;color:#fff;background:#2f6fde}
.m.post{background:#1f9d55}.path{font-family:ui-monospace,monospace;font-weight:600;margin-left:8px}
.auth{float:right;font-size:13px;color:#5b6472}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:14px}
th,td{border-top:1px solid #e6eaef;padding:4px 8px;text-align:left;vertical-align:top}
th{color:#5b6472;font-weight:600}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f3f5f8;padding:8px;border-radius:4px;overflow-x:auto}
nav ul{columns:2;padding-left:18px}
`;

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
/** Escapes, then shows `backticked` words as code. */
const text = (s: string): string => esc(s).replace(/`([^`]+)`/g, '<code>$1</code>');

const refName = (ref: string): string => ref.split('/').pop()!;

/** A one-line description of a schema: type and constraints. */
export function describeSchema(s: JsonSchema): string {
  if (typeof s.$ref === 'string') return `<a href="#schema-${esc(refName(s.$ref))}">${esc(refName(s.$ref))}</a>`;
  if (Array.isArray(s.anyOf)) return (s.anyOf as JsonSchema[]).map(describeSchema).join(' or ');
  if ('const' in s) return `<code>${esc(JSON.stringify(s.const))}</code>`;
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((v) => `<code>${esc(String(v))}</code>`).join(' | ');
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : [];
  const parts: string[] = [types.length ? types.join(' or ') : 'any'];
  if (s.format) parts.push(String(s.format));
  if (s.minLength !== undefined || s.maxLength !== undefined) parts.push(`${s.minLength ?? 0}–${s.maxLength ?? '∞'} chars`);
  if (s.pattern) parts.push(`<code>${esc(String(s.pattern))}</code>`);
  if (s.exclusiveMinimum !== undefined) parts.push(`> ${String(s.exclusiveMinimum)}`);
  if (s.minimum !== undefined) parts.push(`≥ ${String(s.minimum)}`);
  if (s.maximum !== undefined && s.maximum !== Number.MAX_SAFE_INTEGER) parts.push(`≤ ${String(s.maximum)}`);
  if (s.maxProperties !== undefined) parts.push(`≤ ${String(s.maxProperties)} keys`);
  if (typeof s.additionalProperties === 'object' && s.additionalProperties) parts.push(`of ${describeSchema(s.additionalProperties as JsonSchema)}`);
  return parts.join(', ');
}

function fieldsTable(s: JsonSchema): string {
  const props = (s.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((s.required ?? []) as string[]);
  const rows = Object.entries(props).map(
    ([name, p]) =>
      `<tr><td><code>${esc(name)}</code>${required.has(name) ? '' : ' <small>optional</small>'}</td><td>${describeSchema(p)}</td><td>${text(String(p.description ?? ''))}</td></tr>`,
  );
  const closed = s.additionalProperties === false ? '<p><small>No other fields are accepted.</small></p>' : '';
  return `<table><tr><th>field</th><th>type</th><th>meaning</th></tr>${rows.join('')}</table>${closed}`;
}

/** The codes an error response can carry, read from its schema's `code` enum. */
function codesOf(s: JsonSchema): string {
  const code = (s.properties as Record<string, JsonSchema> | undefined)?.code;
  return Array.isArray(code?.enum) ? (code.enum as string[]).map((c) => `<code>${esc(c)}</code>`).join(' ') : '';
}

function operationHtml(path: string, method: string, op: OpenApiOperation): string {
  const auth = op.security.length ? (Object.keys(op.security[0]!)[0] ?? 'none') : 'none';
  const params = op.parameters.length
    ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>meaning</th><th>example</th></tr>${op.parameters
        .map(
          (p) =>
            `<tr><td><code>${esc(p.name)}</code>${p.required ? '' : ' <small>optional</small>'}</td><td>${esc(p.in)}</td><td>${describeSchema(p.schema)}</td><td>${text(p.description)}</td><td>${[
              ...new Set(Object.values(p.examples ?? {}).map((e) => String(e.value))),
            ]
              .map((v) => `<code>${esc(v)}</code>`)
              .join(' ')}</td></tr>`,
        )
        .join('')}</table>`
    : '';
  const body = op.requestBody
    ? `<h4>Body</h4><p>${text(op.requestBody.description)} Schema: ${describeSchema(op.requestBody.content['application/json']!.schema)}</p>${Object.entries(
        op.requestBody.content['application/json']!.examples,
      )
        .map(([name, e]) => `<p>Example <code>${esc(name)}</code>: ${text(e.summary)}</p><pre>${esc(JSON.stringify(e.value, null, 2))}</pre>`)
        .join('')}`
    : '';
  const responses = `<h4>Answers</h4><table><tr><th>status</th><th>when</th><th>body</th><th>codes / headers</th></tr>${Object.entries(op.responses)
    .map(([status, r]) => {
      const [type, c] = Object.entries(r.content ?? {})[0] ?? ['', { schema: {} }];
      const headers = Object.keys(r.headers ?? {}).map((h) => `<code>${esc(h)}</code>`).join(' ');
      const codes = codesOf(c.schema);
      // Error bodies are the Error schema with `code` narrowed to the codes listed beside it.
      const bodyType = codes ? '<a href="#schema-Error">Error</a>' : type === 'application/json' ? describeSchema(c.schema) : esc(type);
      return `<tr><td>${esc(status)}</td><td>${text(r.description)}</td><td>${bodyType}</td><td>${codes} ${headers}</td></tr>`;
    })
    .join('')}</table>`;
  return `<section class="op" id="${esc(op.operationId)}"><span class="auth">auth: ${esc(auth)}</span><span class="m ${esc(method)}">${esc(method.toUpperCase())}</span><span class="path">${esc(path)}</span><p><b>${text(op.summary)}</b>. ${text(op.description)}</p>${params}${body}${responses}</section>`;
}

/** The whole page. */
export function renderDocsPage(doc: OpenApiDocument): string {
  const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));
  const byTag = doc.tags.map((t) => ({ tag: t, ops: ops.filter((o) => o.op.tags.includes(t.name)) })).filter((g) => g.ops.length);
  const nav = `<nav><ul>${ops.map((o) => `<li><a href="#${esc(o.op.operationId)}">${esc(o.method.toUpperCase())} ${esc(o.path)}</a></li>`).join('')}</ul></nav>`;
  const sections = byTag
    .map((g) => `<h2>${esc(g.tag.name)}</h2><p>${text(g.tag.description)}</p>${g.ops.map((o) => operationHtml(o.path, o.method, o.op)).join('')}`)
    .join('');
  const schemes = Object.entries(doc.components.securitySchemes)
    .map(([name, s]) => `<tr><td><code>${esc(name)}</code></td><td>${esc(s.type ?? '')} ${esc(s.scheme ?? '')}</td><td>${text(s.description ?? '')}</td></tr>`)
    .join('');
  const schemas = Object.entries(doc.components.schemas)
    .map(([name, s]) => `<h3 id="schema-${esc(name)}">${esc(name)}</h3>${s.description ? `<p>${text(String(s.description))}</p>` : ''}${fieldsTable(s)}`)
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${esc(doc.info.title)} API reference</title><style>${DOCS_STYLE}</style></head><body><main><h1>${esc(doc.info.title)} API <small>${esc(doc.info.version)}</small></h1><p>${text(doc.info.description)} Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${esc(doc.openapi)}).</p>${nav}<h2>Authentication</h2><table><tr><th>scheme</th><th>type</th><th>meaning</th></tr>${schemes}</table>${sections}<h2>Schemas</h2>${schemas}</main></body></html>`;
}

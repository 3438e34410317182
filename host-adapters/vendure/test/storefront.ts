/**
 * A stand-in storefront for the test server (test use only): in a real Vendure shop the storefront
 * is its own app; here one Express middleware on the Vendure server's origin serves
 * - `GET /storefront/pay/:code`: a page with `<cvco-checkout endpoint="/cvco/v1" order-ref=code>`,
 *   no inline script, under the strict CSP of widget/README.md;
 * - `GET /storefront/widget/:file`: the built widget (`cargo xtask widget` → dist/widget).
 * The contract suite's browser test pays on that page (tests/contract/test_browser.py).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { NextFunction, Request, Response } from 'express';

export const STOREFRONT_ROUTE = '/storefront';

const CSP =
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'";

const TYPES: Record<string, string> = {
    '.js': 'text/javascript; charset=utf-8',
    '.wasm': 'application/wasm',
    '.css': 'text/css; charset=utf-8',
};

function escapeHtml(text: string): string {
    return text.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`);
}

function payPage(code: string): string {
    const ref = escapeHtml(code);
    return `<!doctype html>
<html lang="fr">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Paiement de la commande ${ref}</title>
  <script type="module" src="${STOREFRONT_ROUTE}/widget/cvco-checkout.js"></script>
</head>
<body>
  <main>
    <h1>Commande ${ref}</h1>
    <cvco-checkout endpoint="/cvco/v1" order-ref="${ref}" mode="identifier"></cvco-checkout>
  </main>
</body>
</html>
`;
}

/** The middleware, mounted on `STOREFRONT_ROUTE` (paths below are relative to it). */
export function storefront(widgetDir: string) {
    const root = path.resolve(widgetDir);
    return async (req: Request, res: Response, next: NextFunction) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') return next();
        res.setHeader('Content-Security-Policy', CSP);
        res.setHeader('X-Content-Type-Options', 'nosniff');
        const pay = /^\/pay\/([^/]+)$/.exec(req.path);
        if (pay) {
            let code: string;
            try {
                code = decodeURIComponent(pay[1]);
            } catch {
                res.status(400).type('text/plain').send('bad order code');
                return;
            }
            res.status(200).type('text/html; charset=utf-8').send(payPage(code));
            return;
        }
        // Plain file names only: nothing outside the widget directory.
        const file = /^\/widget\/([A-Za-z0-9_.-]+)$/.exec(req.path);
        const type = file && TYPES[path.extname(file[1])];
        if (file && type) {
            try {
                const body = await readFile(path.join(root, file[1]));
                res.setHeader('Content-Type', type);
                res.status(200).send(body);
                return;
            } catch {
                // not built, or no such file: 404 below
            }
        }
        res.status(404).type('text/plain').send('not found');
    };
}

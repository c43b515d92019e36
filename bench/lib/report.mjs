// The benchmarks' reports: lines printed as they come and kept for
// results/latest.txt, aligned tables, numbers with "n/a" for what is missing.

export const f = (v, d = 1) => (v === undefined || v === null || Number.isNaN(v)
    || !Number.isFinite(v) ? 'n/a' : Number(v).toFixed(d));

// a label left-aligned to n characters
export const pad = (s, n) => String(s).padEnd(n);

// { lines, say(line), table(head, rows) }
export function report() {
    const lines = [];
    const say = (line = '') => {
        lines.push(line);
        process.stdout.write(line + '\n');
    };
    const table = (head, rows) => {
        const w = head.map((h, i) => Math.max(String(h).length,
                                              ...rows.map((r) => String(r[i]).length)));
        const row = (r) => '  ' + r.map((c, i) => (i ? String(c).padStart(w[i])
                                                     : String(c).padEnd(w[i]))).join('  ');
        say(row(head));
        say('  ' + w.map((n) => '-'.repeat(n)).join('  '));
        for (const r of rows) say(row(r));
    };
    return { lines, say, table };
}

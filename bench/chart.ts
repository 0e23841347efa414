// The benchmark pictures, SVG written by hand: cumulative distributions of delivery latency
// (send → recipient) and receipt round trip on a log time axis, and units per room message
// against occupant count.
import { percentile } from './harness.ts';

export interface Series {
  readonly label: string;
  readonly color: string;
  readonly dashed?: boolean;
  /** Milliseconds, sorted ascending. */
  readonly values: readonly number[];
}

const WIDTH = 760;
const PLOT_HEIGHT = 280;
const LINE = 16;
const MARGIN = { left: 64, right: 24, top: 48 };
const TICKS = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000];

const escapeText = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fixed = (value: number) => (Math.round(value * 10) / 10).toString();

export function latencyChart(
  title: string,
  series: readonly Series[],
  footnotes: readonly string[] = [],
): string {
  const all = series.flatMap((entry) => entry.values).filter((value) => value > 0);
  const low = Math.max(0.1, Math.min(...all));
  const high = Math.max(...all, 10);
  const from = [...TICKS].reverse().find((tick) => tick <= low) ?? 0.1;
  const to = TICKS.find((tick) => tick >= high) ?? high;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PLOT_HEIGHT;
  const legendTop = MARGIN.top + plotHeight + 54;
  const HEIGHT = legendTop + LINE * (series.length + footnotes.length);
  const x = (ms: number) =>
    MARGIN.left +
    ((Math.log10(Math.max(ms, from)) - Math.log10(from)) / (Math.log10(to) - Math.log10(from))) * plotWidth;
  const y = (fraction: number) => MARGIN.top + (1 - fraction) * plotHeight;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeText(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeText(title)}</text>`,
  ];
  // Grid and axes.
  for (const tick of TICKS.filter((value) => value >= from && value <= to)) {
    const px = fixed(x(tick));
    out.push(
      `<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${MARGIN.top + plotHeight}" stroke="#e5e5e5"/>`,
      `<text x="${px}" y="${MARGIN.top + plotHeight + 16}" text-anchor="middle">${tick}</text>`,
    );
  }
  for (const fraction of [0, 0.25, 0.5, 0.75, 0.9, 1]) {
    const py = fixed(y(fraction));
    out.push(
      `<line x1="${MARGIN.left}" y1="${py}" x2="${MARGIN.left + plotWidth}" y2="${py}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${Math.round(fraction * 100)}%</text>`,
    );
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#888"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${MARGIN.top + plotHeight + 34}" text-anchor="middle">milliseconds (log scale)</text>`,
    `<text transform="translate(16 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">share of messages at or below</text>`,
  );
  // One step line per series, with its p50 and p99 marked.
  series.forEach((entry, index) => {
    const values = entry.values;
    if (values.length === 0) return;
    const step = Math.max(1, Math.floor(values.length / 400));
    const points: string[] = [`${fixed(x(values[0] as number))},${fixed(y(0))}`];
    for (let i = 0; i < values.length; i += step) {
      points.push(`${fixed(x(values[i] as number))},${fixed(y((i + 1) / values.length))}`);
    }
    points.push(`${fixed(x(values.at(-1) as number))},${fixed(y(1))}`);
    const dash = entry.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<polyline fill="none" stroke="${entry.color}" stroke-width="2"${dash} points="${points.join(' ')}"/>`,
    );
    const p50 = percentile(values, 50);
    const p99 = percentile(values, 99);
    // The p50 and p99 points are marked; their values are in the legend, where they cannot collide.
    for (const [value, fraction] of [
      [p50, 0.5],
      [p99, 0.99],
    ] as const) {
      out.push(`<circle cx="${fixed(x(value))}" cy="${fixed(y(fraction))}" r="3.5" fill="${entry.color}"/>`);
    }
    const legendY = legendTop + index * LINE;
    const legend = `${entry.label}: p50 ${fixed(p50)} ms, p99 ${fixed(p99)} ms (${values.length} messages)`;
    out.push(
      `<line x1="${MARGIN.left}" y1="${legendY - 4}" x2="${MARGIN.left + 24}" y2="${legendY - 4}" stroke="${entry.color}" stroke-width="2"${dash}/>`,
      `<text x="${MARGIN.left + 30}" y="${legendY}">${escapeText(legend)}</text>`,
    );
  });
  footnotes.forEach((note, index) => {
    out.push(
      `<text x="${MARGIN.left}" y="${legendTop + (series.length + index) * LINE}" fill="#555">${escapeText(note)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}

export interface RoomPoint {
  readonly occupants: number;
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly occupantListBytes: number;
}

/** Units per room message against occupant count: log occupants, linear units. */
export function roomCostChart(
  title: string,
  points: readonly RoomPoint[],
  footnotes: readonly string[] = [],
): string {
  const sorted = [...points].sort((a, b) => a.occupants - b.occupants);
  const series = [
    { label: 'read units', color: '#1f77b4', dashed: false, value: (p: RoomPoint) => p.readUnits },
    {
      label: 'occupant list size / 4 KB',
      color: '#7f7f7f',
      dashed: true,
      value: (p: RoomPoint) => p.occupantListBytes / 4096,
    },
    { label: 'write units', color: '#d62728', dashed: false, value: (p: RoomPoint) => p.writeUnits },
  ];
  const most = Math.max(2, ...sorted.flatMap((p) => series.map((s) => s.value(p))));
  const step = [1, 2, 5, 10, 20, 50, 100].find((candidate) => most / candidate <= 8) ?? 200;
  const top = Math.ceil(most / step) * step;
  const lowest = 1;
  const right = 10 ** Math.ceil(Math.log10(Math.max(10, ...sorted.map((p) => p.occupants))));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const legendTop = MARGIN.top + PLOT_HEIGHT + 54;
  const height = legendTop + LINE * (series.length + footnotes.length);
  const x = (occupants: number) =>
    MARGIN.left + (Math.log10(occupants / lowest) / Math.log10(right / lowest)) * plotWidth;
  const y = (units: number) => MARGIN.top + (1 - units / top) * PLOT_HEIGHT;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeText(title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeText(title)}</text>`,
  ];
  for (let tick = lowest; tick <= right * 1.0001; tick *= 10) {
    const px = fixed(x(tick));
    out.push(
      `<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${MARGIN.top + PLOT_HEIGHT}" stroke="#e5e5e5"/>`,
      `<text x="${px}" y="${MARGIN.top + PLOT_HEIGHT + 16}" text-anchor="middle">${tick}</text>`,
    );
  }
  for (let units = 0; units <= top; units += step) {
    const py = fixed(y(units));
    out.push(
      `<line x1="${MARGIN.left}" y1="${py}" x2="${MARGIN.left + plotWidth}" y2="${py}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${units}</text>`,
    );
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${PLOT_HEIGHT}" fill="none" stroke="#888"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${MARGIN.top + PLOT_HEIGHT + 34}" text-anchor="middle">occupants (log scale)</text>`,
    `<text transform="translate(16 ${MARGIN.top + PLOT_HEIGHT / 2}) rotate(-90)" text-anchor="middle">capacity units per room message</text>`,
  );
  series.forEach((entry, index) => {
    const dash = entry.dashed ? ' stroke-dasharray="6 4"' : '';
    const coordinates = sorted.map((p) => [fixed(x(p.occupants)), fixed(y(entry.value(p)))] as const);
    out.push(
      `<polyline fill="none" stroke="${entry.color}" stroke-width="2"${dash} points="${coordinates.map(([px, py]) => `${px},${py}`).join(' ')}"/>`,
    );
    if (!entry.dashed) {
      for (const [px, py] of coordinates)
        out.push(`<circle cx="${px}" cy="${py}" r="3.5" fill="${entry.color}"/>`);
    }
    const values = sorted.map((p) => `${p.occupants}: ${fixed(entry.value(p))}`).join(', ');
    const legendY = legendTop + index * LINE;
    out.push(
      `<line x1="${MARGIN.left}" y1="${legendY - 4}" x2="${MARGIN.left + 24}" y2="${legendY - 4}" stroke="${entry.color}" stroke-width="2"${dash}/>`,
      `<text x="${MARGIN.left + 30}" y="${legendY}">${escapeText(`${entry.label} (${values})`)}</text>`,
    );
  });
  footnotes.forEach((note, index) => {
    out.push(
      `<text x="${MARGIN.left}" y="${legendTop + (series.length + index) * LINE}" fill="#555">${escapeText(note)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}

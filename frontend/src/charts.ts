// SVG charts built with DOM APIs only (createElementNS, textContent): data never becomes markup.
// Every chart is an <svg role="img"> with a <title> and <desc>, and comes in a figure whose table view shows the same
// numbers. Colours: Okabe–Ito for categories and viridis for heatmaps, both readable with colour-vision deficiencies.
import { el } from "./dom";
import { formatNumber, lang, t } from "./i18n";

const SVG_NS = "http://www.w3.org/2000/svg";
type SvgAttrs = Record<string, string | number | null | undefined>;

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: SvgAttrs = {}, ...children: (Node | string | null)[]): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Okabe & Ito (2008): eight colours distinguishable with the common colour-vision deficiencies. */
export const CATEGORICAL = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"];
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
const REFERENCE_LINES = [0.667, 0.8]; // Krippendorff's minima for tentative and firm conclusions

function hexToRgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** Viridis at t in [0, 1] (clamped), linearly interpolated between ten stops. */
export function viridis(value: number): string {
  const x = Math.min(1, Math.max(0, value)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const [a, b] = [hexToRgb(VIRIDIS[i]), hexToRgb(VIRIDIS[i + 1])];
  const mix = a.map((c, k) => Math.round(c + (b[k] - c) * (x - i)));
  return `rgb(${mix[0]}, ${mix[1]}, ${mix[2]})`;
}

/** Dark text on the light end of viridis, white on the dark end. */
function inkOn(value: number): string {
  return value > 0.62 ? "#111827" : "#ffffff";
}

export function categoryColour(index: number): string {
  return CATEGORICAL[index % CATEGORICAL.length];
}

let uid = 0;
function nextId(prefix: string): string {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** The accessible frame of a chart: role=img, labelled by its <title>, described by its <desc>. */
function chartRoot(width: number, height: number, title: string, description: string, extraClass = ""): SVGSVGElement {
  const titleId = nextId("chart-title");
  const descId = nextId("chart-desc");
  return svg(
    "svg",
    {
      class: `chart ${extraClass}`.trim(),
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-labelledby": titleId,
      "aria-describedby": descId,
      direction: "ltr", // axes read left to right in every UI language; labels keep their own script direction
      preserveAspectRatio: "xMinYMin meet",
    },
    svg("title", { id: titleId }, title),
    svg("desc", { id: descId }, description),
  );
}

function text(x: number, y: number, content: string, attrs: SvgAttrs = {}): SVGTextElement {
  return svg("text", { x, y, ...attrs }, content);
}

/** Roughly how wide a label renders at 13px; good enough to size margins without measuring the DOM. */
function labelWidth(labels: string[], perChar = 7.2, min = 40, max = 220): number {
  const longest = labels.reduce((m, l) => Math.max(m, l.length), 0);
  return Math.min(max, Math.max(min, longest * perChar + 12));
}

function shorten(label: string, maxChars: number): string {
  return label.length > maxChars ? `${label.slice(0, maxChars - 1)}…` : label;
}

/** Coefficients always with three decimals (0.530, not 0.53), so columns of them line up. */
export function formatAlpha(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return new Intl.NumberFormat(lang(), { minimumFractionDigits: 3, maximumFractionDigits: 3 }).format(value);
}

export function formatInterval(low: number | null | undefined, high: number | null | undefined): string {
  if (low === null || low === undefined || high === null || high === undefined) return "—";
  return `[${formatAlpha(low)}, ${formatAlpha(high)}]`;
}

// --- forest plot ------------------------------------------------------------------------------------------------------

export interface ForestRow {
  label: string;
  value: number | null;
  low: number | null;
  high: number | null;
  note?: string; // e.g. "n = 24"
  heading?: boolean; // a section heading row (no interval)
}

/** Point estimates with their intervals on a shared alpha axis, with the 0.667 and 0.8 reference lines. */
export function forestPlot(rows: ForestRow[], title: string, description: string, width = 560): SVGSVGElement {
  const rowHeight = 24;
  const top = 8;
  const axisHeight = 30;
  const left = labelWidth(rows.map((r) => r.label), 7, 60, 200);
  const right = 150;
  const height = top + rows.length * rowHeight + axisHeight;
  const values = rows.flatMap((r) => [r.value, r.low, r.high]).filter((v): v is number => v !== null && !Number.isNaN(v));
  const minimum = Math.min(0, Math.floor(Math.min(...values, 0) * 5) / 5);
  const scaleX = (v: number): number => left + ((v - minimum) / (1 - minimum)) * (width - left - right);
  const root = chartRoot(width, height, title, description, "forest");
  const plotBottom = top + rows.length * rowHeight;

  // Axis ticks and reference lines first, so the intervals draw over them.
  const ticks: number[] = [];
  for (let v = minimum; v <= 1.0001; v += 0.2) ticks.push(Math.round(v * 10) / 10);
  for (const tick of ticks) {
    const x = scaleX(tick);
    root.append(
      svg("line", { x1: x, x2: x, y1: top, y2: plotBottom, class: tick === 0 ? "zero" : "grid" }),
      text(x, plotBottom + 16, formatNumber(tick, 1), { class: "tick", "text-anchor": "middle" }),
    );
  }
  // The reference lines are named in the figure's note; labels at the top would collide (0.667 and 0.8 are close).
  for (const reference of REFERENCE_LINES) {
    const x = scaleX(reference);
    root.append(svg("line", { x1: x, x2: x, y1: top, y2: plotBottom, class: "reference" }));
  }
  root.append(text((left + width - right) / 2, plotBottom + 29, "α", { class: "axis-title", "text-anchor": "middle" }));

  rows.forEach((row, index) => {
    const y = top + index * rowHeight + rowHeight / 2;
    if (row.heading) {
      root.append(text(4, y + 4, row.label, { class: "row-heading" }));
      return;
    }
    const group = svg("g", { class: "forest-row", tabindex: 0 });
    const summary = `${row.label}: α ${formatAlpha(row.value)} ${formatInterval(row.low, row.high)}${row.note ? ` · ${row.note}` : ""}`;
    group.append(svg("title", {}, summary));
    group.setAttribute("aria-label", summary);
    if (index % 2 === 0) group.append(svg("rect", { x: 0, y: y - rowHeight / 2, width, height: rowHeight, class: "band" }));
    group.append(text(left - 8, y + 4, shorten(row.label, 28), { "text-anchor": "end", class: "row-label" }));
    if (row.low !== null && row.high !== null) {
      group.append(
        svg("line", { x1: scaleX(row.low), x2: scaleX(row.high), y1: y, y2: y, class: "interval" }),
        svg("line", { x1: scaleX(row.low), x2: scaleX(row.low), y1: y - 5, y2: y + 5, class: "interval" }),
        svg("line", { x1: scaleX(row.high), x2: scaleX(row.high), y1: y - 5, y2: y + 5, class: "interval" }),
      );
    }
    if (row.value !== null && !Number.isNaN(row.value)) {
      group.append(svg("rect", { x: scaleX(row.value) - 5, y: y - 5, width: 10, height: 10, class: "estimate" }));
    }
    group.append(
      text(width - right + 10, y + 4, `${formatAlpha(row.value)} ${formatInterval(row.low, row.high)}`, { class: "value-label" }),
    );
    root.append(group);
  });
  return root;
}

// --- heatmap ----------------------------------------------------------------------------------------------------------

export interface HeatmapOptions {
  /** Colour position in [0, 1] of a value; null values are drawn empty. */
  scale: (value: number) => number;
  cellText: (value: number | null, row: number, column: number) => string;
  cellTitle: (value: number | null, row: number, column: number) => string;
  rowAxis?: string;
  columnAxis?: string;
  legend?: { low: string; high: string };
  maxCell?: number;
}

/** A matrix of coloured cells, each with its number printed and a tooltip (<title>) naming row, column and value. */
export function heatmap(
  rowLabels: string[],
  columnLabels: string[],
  values: (number | null)[][],
  title: string,
  description: string,
  options: HeatmapOptions,
): SVGSVGElement {
  const cell = Math.max(30, Math.min(options.maxCell ?? 56, Math.floor(440 / Math.max(1, columnLabels.length))));
  const left = labelWidth(rowLabels, 7, 50, 150) + (options.rowAxis ? 18 : 0);
  const top = Math.min(120, labelWidth(columnLabels, 6.2, 30, 120)) + (options.columnAxis ? 18 : 0);
  const legendHeight = options.legend ? 34 : 0;
  const width = left + cell * columnLabels.length + Math.min(90, top * 0.8); // room for the last slanted label
  const height = top + cell * rowLabels.length + legendHeight + 6;
  const root = chartRoot(width, height, title, description, "heatmap");
  if (options.columnAxis) root.append(text(left + (cell * columnLabels.length) / 2, 12, options.columnAxis, { class: "axis-title", "text-anchor": "middle" }));
  if (options.rowAxis) {
    const cy = top + (cell * rowLabels.length) / 2;
    root.append(text(12, cy, options.rowAxis, { class: "axis-title", "text-anchor": "middle", transform: `rotate(-90 12 ${cy})` }));
  }
  columnLabels.forEach((label, column) => {
    const x = left + column * cell + cell / 2;
    root.append(text(x, top - 6, shorten(label, 16), { class: "column-label", transform: `rotate(-40 ${x} ${top - 6})` }));
  });
  rowLabels.forEach((label, row) => {
    root.append(text(left - 6, top + row * cell + cell / 2 + 4, shorten(label, 20), { class: "row-label", "text-anchor": "end" }));
    columnLabels.forEach((_, column) => {
      const value = values[row]?.[column] ?? null;
      const x = left + column * cell;
      const y = top + row * cell;
      const position = value === null ? null : options.scale(value);
      const tip = options.cellTitle(value, row, column);
      const group = svg("g", { class: "cell", tabindex: 0, "aria-label": tip, "data-row": row, "data-column": column });
      group.append(
        svg("title", {}, tip),
        svg("rect", { x: x + 1, y: y + 1, width: cell - 2, height: cell - 2, rx: 3, fill: position === null ? "#f3f4f6" : viridis(position) }),
        text(x + cell / 2, y + cell / 2 + 4, options.cellText(value, row, column), {
          class: "cell-text",
          "text-anchor": "middle",
          fill: position === null ? "#6b7280" : inkOn(position),
        }),
      );
      root.append(group);
    });
  });
  if (options.legend) {
    const y = top + cell * rowLabels.length + 12;
    const legendWidth = Math.min(200, cell * columnLabels.length);
    const gradientId = nextId("viridis");
    const gradient = svg("linearGradient", { id: gradientId, x1: 0, x2: 1, y1: 0, y2: 0 });
    VIRIDIS.forEach((colour, i) => gradient.append(svg("stop", { offset: i / (VIRIDIS.length - 1), "stop-color": colour })));
    root.append(
      svg("defs", {}, gradient),
      svg("rect", { x: left, y, width: legendWidth, height: 8, fill: `url(#${gradientId})`, rx: 2 }),
      text(left, y + 21, options.legend.low, { class: "tick", "text-anchor": "start" }),
      text(left + legendWidth, y + 21, options.legend.high, { class: "tick", "text-anchor": "end" }),
    );
  }
  return root;
}

// --- stacked bars ------------------------------------------------------------------------------------------------------

/** One horizontal bar per group (e.g. language), split into the share of each series (e.g. label), with a legend. */
export function stackedBars(
  groups: string[],
  series: string[],
  counts: number[][],
  totals: number[],
  title: string,
  description: string,
  width = 560,
): SVGSVGElement {
  const barHeight = 26;
  const gap = 12;
  const left = labelWidth(groups, 8, 40, 120);
  const right = 16;
  const legendRows = Math.ceil(series.length / 4);
  const legendHeight = legendRows * 20 + 8;
  const top = legendHeight;
  const axisHeight = 22;
  const height = top + groups.length * (barHeight + gap) + axisHeight;
  const root = chartRoot(width, height, title, description, "stacked");
  const plotWidth = width - left - right;
  const legendColumn = (width - 8) / 4;
  series.forEach((name, i) => {
    const x = 4 + (i % 4) * legendColumn;
    const y = Math.floor(i / 4) * 20 + 12;
    root.append(
      svg("rect", { x, y: y - 9, width: 12, height: 12, rx: 2, fill: categoryColour(i), class: "swatch" }),
      text(x + 17, y + 1, shorten(name, 18), { class: "legend-label" }),
    );
  });
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    const x = left + tick * plotWidth;
    const bottom = top + groups.length * (barHeight + gap);
    root.append(
      svg("line", { x1: x, x2: x, y1: top, y2: bottom - gap + 2, class: "grid" }),
      text(x, bottom + 10, `${formatNumber(tick * 100)}%`, { class: "tick", "text-anchor": "middle" }),
    );
  }
  groups.forEach((group, row) => {
    const y = top + row * (barHeight + gap);
    root.append(text(left - 8, y + barHeight / 2 + 4, shorten(group, 14), { class: "row-label", "text-anchor": "end" }));
    const total = totals[row] || 1;
    const sum = counts[row].reduce((a, b) => a + b, 0) || 1;
    let x = left;
    series.forEach((name, i) => {
      const count = counts[row][i] ?? 0;
      if (!count) return;
      // Multi-label ratings can choose several labels: bars show each label's share of the chosen labels,
      // the tooltip its share of ratings.
      const share = count / sum;
      const segment = share * plotWidth;
      const tip = t("dash.dist_cell", { group, label: name, count: formatNumber(count), share: formatNumber((100 * count) / total, 1) });
      const g = svg("g", { class: "segment", tabindex: 0, "aria-label": tip });
      g.append(svg("title", {}, tip), svg("rect", { x, y, width: Math.max(0, segment - 1), height: barHeight, fill: categoryColour(i) }));
      if (segment > 34) {
        g.append(
          text(x + segment / 2, y + barHeight / 2 + 4, `${formatNumber(share * 100)}%`, {
            class: "segment-text",
            "text-anchor": "middle",
            fill: ["#F0E442", "#E69F00", "#56B4E9", "#999999"].includes(categoryColour(i)) ? "#111827" : "#ffffff",
          }),
        );
      }
      root.append(g);
      x += segment;
    });
  });
  return root;
}

// --- series over time ---------------------------------------------------------------------------------------------------

export interface TimePoint {
  label: string;
  value: number | null;
  low: number | null;
  high: number | null;
  note?: string;
}

/** Alpha per period as points joined by a line, the interval as a shaded band, with the reference lines. */
export function intervalSeries(points: TimePoint[], title: string, description: string, width = 560): SVGSVGElement {
  const height = 230;
  const left = 44 + 30; // ticks, plus half a date label
  const right = 40;
  const top = 12;
  const bottom = 44;
  const values = points.flatMap((p) => [p.value, p.low, p.high]).filter((v): v is number => v !== null && !Number.isNaN(v));
  const minimum = Math.min(0, Math.floor(Math.min(...values, 0) * 5) / 5);
  const plotHeight = height - top - bottom;
  const scaleY = (v: number): number => top + (1 - (v - minimum) / (1 - minimum)) * plotHeight;
  const step = points.length > 1 ? (width - left - right) / (points.length - 1) : 0;
  const scaleX = (i: number): number => (points.length > 1 ? left + i * step : (left + width - right) / 2);
  const root = chartRoot(width, height, title, description, "series");
  for (let v = minimum; v <= 1.0001; v += 0.2) {
    const y = scaleY(v);
    root.append(
      svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: Math.abs(v) < 1e-9 ? "zero" : "grid" }),
      text(left - 8, y + 4, formatNumber(Math.round(v * 10) / 10, 1), { class: "tick", "text-anchor": "end" }),
    );
  }
  for (const reference of REFERENCE_LINES) {
    const y = scaleY(reference);
    root.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: "reference" }), text(width - right + 4, y + 4, formatNumber(reference, 3), { class: "reference-label", "text-anchor": "start" }));
  }
  const banded = points.map((p, i) => ({ p, i })).filter(({ p }) => p.low !== null && p.high !== null);
  if (banded.length > 1) {
    const upper = banded.map(({ p, i }) => `${scaleX(i)},${scaleY(p.high as number)}`);
    const lower = banded.reverse().map(({ p, i }) => `${scaleX(i)},${scaleY(p.low as number)}`);
    root.append(svg("polygon", { points: [...upper, ...lower].join(" "), class: "band-area" }));
  }
  const defined = points.map((p, i) => ({ p, i })).filter(({ p }) => p.value !== null && !Number.isNaN(p.value));
  if (defined.length > 1) {
    root.append(svg("polyline", { points: defined.map(({ p, i }) => `${scaleX(i)},${scaleY(p.value as number)}`).join(" "), class: "series-line" }));
  }
  const labelEvery = Math.max(1, Math.ceil(points.length / 8));
  points.forEach((point, i) => {
    const x = scaleX(i);
    if (i % labelEvery === 0) root.append(text(x, height - bottom + 16, point.label, { class: "tick", "text-anchor": "middle" }));
    const tip = `${point.label}: α ${formatAlpha(point.value)} ${formatInterval(point.low, point.high)}${point.note ? ` · ${point.note}` : ""}`;
    const g = svg("g", { class: "point", tabindex: 0, "aria-label": tip }, svg("title", {}, tip));
    if (point.low !== null && point.high !== null) g.append(svg("line", { x1: x, x2: x, y1: scaleY(point.low), y2: scaleY(point.high), class: "interval" }));
    if (point.value !== null && !Number.isNaN(point.value)) g.append(svg("circle", { cx: x, cy: scaleY(point.value), r: 4.5, class: "estimate" }));
    root.append(g);
  });
  root.append(text((left + width - right) / 2, height - 6, t("dash.week_axis"), { class: "axis-title", "text-anchor": "middle" }));
  return root;
}

// --- horizontal bars -------------------------------------------------------------------------------------------------

export interface BarRow {
  label: string;
  value: number;
  total?: number; // draws value/total as a filled share of a track
  text: string;
}

/** Horizontal bars: counts against the largest, or shares of a total drawn on a track. */
export function barChart(rows: BarRow[], title: string, description: string, width = 560): SVGSVGElement {
  const barHeight = 18;
  const gap = 8;
  const left = labelWidth(rows.map((r) => r.label), 7.2, 50, 160);
  const right = 130;
  const height = rows.length * (barHeight + gap) + 6;
  const root = chartRoot(width, height, title, description, "bars");
  const largest = Math.max(1, ...rows.map((r) => (r.total ? r.total : r.value)));
  const plotWidth = width - left - right;
  rows.forEach((row, index) => {
    const y = 4 + index * (barHeight + gap);
    const tip = `${row.label}: ${row.text}`;
    const g = svg("g", { class: "bar", tabindex: 0, "aria-label": tip }, svg("title", {}, tip));
    g.append(text(left - 8, y + barHeight / 2 + 4, shorten(row.label, 22), { class: "row-label", "text-anchor": "end" }));
    if (row.total !== undefined) {
      g.append(svg("rect", { x: left, y, width: plotWidth, height: barHeight, rx: 3, class: "track" }));
      const share = row.total ? row.value / row.total : 0;
      g.append(svg("rect", { x: left, y, width: share * plotWidth, height: barHeight, rx: 3, fill: CATEGORICAL[0] }));
    } else {
      g.append(svg("rect", { x: left, y, width: (row.value / largest) * plotWidth, height: barHeight, rx: 3, fill: CATEGORICAL[0] }));
    }
    g.append(text(width - right + 8, y + barHeight / 2 + 4, row.text, { class: "value-label" }));
    root.append(g);
  });
  return root;
}

// --- figure with a table view ---------------------------------------------------------------------------------------

export interface TableData {
  head: string[];
  rows: string[][];
}

export function dataTable(data: TableData, caption: string): HTMLTableElement {
  return el(
    "table",
    { class: "data compact" },
    el("caption", { class: "visually-hidden", text: caption }),
    el("thead", {}, el("tr", {}, ...data.head.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...data.rows.map((r) => el("tr", {}, ...r.map((c, i) => (i === 0 ? el("th", { scope: "row", text: c }) : el("td", { text: c })))))),
  );
}

/** A titled figure showing a chart, with a button that switches to a table of the same numbers (and back). */
export function chartFigure(options: { id: string; title: string; note?: string; chart: Element; table: TableData; tableFirst?: boolean }): HTMLElement {
  const heading = el("h3", { class: "figure-title", id: `${options.id}-title`, text: options.title });
  const chartBox = el("div", { class: "chart-box" });
  chartBox.append(options.chart);
  const tableBox = el("div", { class: "table-box" }, dataTable(options.table, options.title));
  const toggle = el("button", { type: "button", class: "button small table-toggle", "aria-pressed": "false", "aria-controls": `${options.id}-body` });
  const show = (asTable: boolean): void => {
    chartBox.hidden = asTable;
    tableBox.hidden = !asTable;
    toggle.setAttribute("aria-pressed", String(asTable));
    toggle.textContent = asTable ? t("dash.show_chart") : t("dash.show_table");
  };
  toggle.addEventListener("click", () => show(tableBox.hidden));
  show(Boolean(options.tableFirst));
  return el(
    "figure",
    { class: "dash-figure", id: options.id, "aria-labelledby": `${options.id}-title` },
    el("div", { class: "figure-head" }, heading, toggle),
    options.note ? el("p", { class: "muted figure-note", text: options.note }) : null,
    el("div", { id: `${options.id}-body` }, chartBox, tableBox),
  );
}

// --- histogram ------------------------------------------------------------------------------------------------------

export interface HistogramOptions {
  /** Tooltip (and accessible name) of one bin; the caller words it in the UI language. */
  binTitle: (low: number, high: number, count: number) => string;
  xAxis?: string;
  yAxis?: string;
  colour?: string;
  width?: number;
  height?: number;
  digits?: number; // decimals of the edge ticks
}

/** Counts per bin as vertical bars over the bins' edges (edges.length === counts.length + 1), with count ticks. */
export function histogram(edges: number[], counts: number[], title: string, description: string, options: HistogramOptions): SVGSVGElement {
  const width = options.width ?? 360;
  const height = options.height ?? 190;
  const left = 46;
  const right = 14;
  const top = 10;
  const bottom = options.xAxis ? 40 : 24;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const bins = Math.max(1, counts.length);
  const highest = Math.max(1, ...counts);
  const step = highest <= 4 ? 1 : Math.ceil(highest / 4);
  const largest = Math.ceil(highest / step) * step; // the axis ends on a tick
  const scaleY = (v: number): number => top + plotHeight - (v / largest) * plotHeight;
  const root = chartRoot(width, height, title, description, "histogram");
  for (let v = 0; v <= largest; v += step) {
    const y = scaleY(v);
    root.append(
      svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: v === 0 ? "zero" : "grid" }),
      text(left - 6, y + 4, formatNumber(v), { class: "tick", "text-anchor": "end" }),
    );
  }
  const barWidth = plotWidth / bins;
  const tickEvery = Math.max(1, Math.ceil(bins / 6));
  const digits = options.digits ?? 2;
  counts.forEach((count, i) => {
    const low = edges[i] ?? i;
    const high = edges[i + 1] ?? i + 1;
    const x = left + i * barWidth;
    const tip = options.binTitle(low, high, count);
    const g = svg("g", { class: "bin", tabindex: 0, "aria-label": tip, "data-count": count }, svg("title", {}, tip));
    g.append(svg("rect", { x: x + 0.5, y: scaleY(count), width: Math.max(0, barWidth - 1), height: top + plotHeight - scaleY(count), fill: options.colour ?? CATEGORICAL[0] }));
    root.append(g);
  });
  for (let i = 0; i <= bins; i += tickEvery) {
    const x = left + i * barWidth;
    root.append(text(x, top + plotHeight + 14, formatNumber(edges[i] ?? i, digits), { class: "tick", "text-anchor": "middle" }));
  }
  if (bins % tickEvery !== 0) root.append(text(left + plotWidth, top + plotHeight + 14, formatNumber(edges[bins] ?? bins, digits), { class: "tick", "text-anchor": "middle" }));
  if (options.xAxis) root.append(text(left + plotWidth / 2, height - 6, options.xAxis, { class: "axis-title", "text-anchor": "middle" }));
  if (options.yAxis) root.append(text(12, top + plotHeight / 2, options.yAxis, { class: "axis-title", "text-anchor": "middle", transform: `rotate(-90 12 ${top + plotHeight / 2})` }));
  return root;
}

// --- learning curves -------------------------------------------------------------------------------------------------

export interface CurveSeries {
  name: string;
  points: [number, number][]; // (number of labels, score 0–1)
  dashed?: boolean;
}

/** Scores (0–1) against the number of labels, one line per series, each point focusable with its value. */
export function learningCurve(series: CurveSeries[], title: string, description: string, xAxis: string, width = 560): SVGSVGElement {
  const height = 240;
  const left = 44;
  const right = 16;
  const top = 12;
  const bottom = 60;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const maxX = Math.max(1, ...xs);
  const scaleX = (v: number): number => left + (v / maxX) * (width - left - right);
  const scaleY = (v: number): number => top + (1 - v) * (height - top - bottom);
  const root = chartRoot(width, height, title, description, "series");
  for (let v = 0; v <= 1.0001; v += 0.2) {
    const y = scaleY(v);
    root.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, class: v < 1e-9 ? "zero" : "grid" }), text(left - 8, y + 4, formatNumber(Math.round(v * 10) / 10, 1), { class: "tick", "text-anchor": "end" }));
  }
  for (const tick of [0, 0.5, 1]) {
    const value = Math.round(maxX * tick);
    root.append(text(scaleX(value), height - bottom + 16, formatNumber(value), { class: "tick", "text-anchor": "middle" }));
  }
  series.forEach((s, index) => {
    const colour = categoryColour(index);
    if (s.points.length > 1) {
      root.append(svg("polyline", { points: s.points.map(([x, y]) => `${scaleX(x)},${scaleY(y)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2, "stroke-dasharray": s.dashed ? "5 4" : "none" }));
    }
    for (const [x, y] of s.points) {
      const tip = `${s.name}: ${formatNumber(x)} → ${formatAlpha(y)}`;
      root.append(svg("g", { class: "point", tabindex: 0, "aria-label": tip }, svg("title", {}, tip), svg("circle", { cx: scaleX(x), cy: scaleY(y), r: 4, fill: colour })));
    }
    const legendY = height - 22 + 0;
    const legendX = left + index * 180;
    root.append(svg("line", { x1: legendX, x2: legendX + 18, y1: legendY, y2: legendY, stroke: colour, "stroke-width": 2, "stroke-dasharray": s.dashed ? "5 4" : "none" }), text(legendX + 24, legendY + 4, shorten(s.name, 22), { class: "tick" }));
  });
  root.append(text((left + width - right) / 2, height - 32, xAxis, { class: "axis-title", "text-anchor": "middle" }));
  return root;
}

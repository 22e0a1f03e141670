// featurecost built-in page: reads the collector's report API and draws plain SVG.
// No libraries and no CDN, so it works on a closed network. Money arrives as decimal
// strings; it is only turned into floats for chart geometry, never for the numbers shown.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f6fde", "#e8833a", "#3aa76d", "#c2417a", "#8e6bd6", "#c9a227", "#2bb3c0", "#7a8794"];
const DAY_MS = 86400000;
const UNATTRIBUTED = "unattributed"; // the feature of calls made outside any featurecost.attribute()
const TENANT_COLOR = "#1b998b"; // not in PALETTE: tenant bars are not features
const TOP_TENANTS = 10;
const SCALE = 18; // Decimal(38, 18): money is summed as BigInt in units of 1e-18 USD

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A decimal string from the API in plain notation: Python writes a zero with scale 18 as "0E-18".
function plainDecimal(text) {
  const match = /^(-?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) throw new Error("not a decimal: " + text);
  const [, sign, whole, frac = "", exponent = "0"] = match;
  let digits = whole + frac;
  let point = whole.length + Number(exponent);
  if (point <= 0) {
    digits = "0".repeat(1 - point) + digits;
    point = 1;
  }
  if (point > digits.length) digits += "0".repeat(point - digits.length);
  return sign + digits.slice(0, point) + "." + digits.slice(point);
}

function toUnits(text) {
  const [whole, frac = ""] = plainDecimal(text).split(".");
  const negative = whole.startsWith("-");
  const units = BigInt(whole.replace("-", "") + (frac + "0".repeat(SCALE)).slice(0, SCALE));
  return negative ? -units : units;
}

function fromUnits(units) {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(SCALE + 1, "0");
  return (negative ? "-" : "") + digits.slice(0, -SCALE) + "." + digits.slice(-SCALE);
}

// The exact sum of decimal strings (nulls skipped), as a decimal string.
function sumDecimals(texts) {
  return fromUnits(texts.reduce((acc, text) => (text === null ? acc : acc + toUnits(text)), 0n));
}

// Round a non-negative decimal string half-up to `places` digits, without floats.
function roundDecimal(text, places) {
  const [whole, frac = ""] = text.split(".");
  const padded = (frac + "0".repeat(places + 1)).slice(0, places + 1);
  let scaled = BigInt(whole + padded.slice(0, places));
  if (Number(padded[places]) >= 5) scaled += 1n;
  const digits = scaled.toString().padStart(places + 1, "0");
  return digits.slice(0, digits.length - places) + "." + digits.slice(digits.length - places);
}

function money(text) {
  if (text === null) return "unpriced";
  const plain = plainDecimal(text);
  return plain.startsWith("-") ? "-$" + roundDecimal(plain.slice(1), 6) : "$" + roundDecimal(plain, 6);
}

function integer(n) {
  return Number(n).toLocaleString("en-US");
}

function percent(share) {
  return share === null ? "" : roundDecimal((Number(share) * 100).toFixed(3), 1) + "%";
}

// A ratio of two counts as a percentage with one decimal; empty when there is no denominator.
function ratio(part, whole) {
  return whole > 0 ? ((100 * part) / whole).toFixed(1) + "%" : "–";
}

async function report(name, since, until, environment, extra) {
  const params = new URLSearchParams({ since: since.toISOString(), until: until.toISOString(), environment, ...extra });
  const response = await fetch(`api/v1/reports/${name}?` + params.toString());
  if (!response.ok) throw new Error("report API answered " + response.status + ": " + (await response.text()));
  return (await response.json()).rows;
}

function featureCosts(since, until, environment) {
  return report("feature-costs", since, until, environment);
}

function renderKpis(rows) {
  const box = document.getElementById("kpis");
  box.replaceChildren();
  const totalText = sumDecimals(rows.map((row) => row.cost_usd));
  const sum = (key) => rows.reduce((acc, row) => acc + row[key], 0);
  const unattributed = rows.find((row) => row.feature === UNATTRIBUTED);
  const kpis = [
    ["Priced spend", money(totalText), "kpi-spend"],
    ["Calls", integer(sum("calls")), "kpi-calls"],
    ["Sessions", integer(sum("sessions")), "kpi-sessions"],
    ["Unpriced calls", integer(sum("unpriced_calls")), "kpi-unpriced"],
    ["Unattributed spend", unattributed && unattributed.share !== null ? percent(unattributed.share) : "0.0%", "kpi-unattributed"],
    ["Cache hit rate", ratio(sum("cache_read_tokens"), sum("input_tokens")), "kpi-cache"],
  ];
  for (const [label, value, id] of kpis) {
    const card = el("div", { class: "kpi", id });
    card.append(el("div", { class: "label" }, label), el("div", { class: "value" }, value));
    box.append(card);
  }
}

function renderFeatureBars(rows, colors) {
  const width = 560;
  const barHeight = 22;
  const labelWidth = 150;
  const height = Math.max(rows.length, 1) * (barHeight + 8) + 8;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Cost by feature" });
  const max = Math.max(...rows.map((row) => Number(row.cost_usd || 0)), 0);
  rows.forEach((row, i) => {
    const y = 8 + i * (barHeight + 8);
    const value = Number(row.cost_usd || 0);
    const w = max > 0 ? Math.max(((width - labelWidth - 90) * value) / max, 1) : 1;
    const label = el("svg:text", { x: 0, y: y + 15 }, row.feature.length > 21 ? row.feature.slice(0, 20) + "…" : row.feature);
    label.append(el("svg:title", {}, row.feature));
    svg.append(label);
    if (row.cost_usd === null) {
      // unknown price: no bar at all (a zero-length bar would read as $0)
      svg.append(el("svg:text", { x: labelWidth, y: y + 15, class: "unpriced" }, "unpriced"));
      return;
    }
    svg.append(el("svg:rect", { x: labelWidth, y, width: w, height: barHeight, fill: colors.get(row.feature), "data-feature": row.feature }));
    svg.append(el("svg:text", { x: labelWidth + w + 6, y: y + 15 }, money(row.cost_usd)));
  });
  document.getElementById("chart-features").replaceChildren(svg);
}

function renderDailyBars(days, colors) {
  const width = 560;
  const height = 240;
  const bottom = 22;
  const left = 8;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Daily cost by feature" });
  const totals = days.map((day) => day.rows.reduce((acc, row) => acc + Number(row.cost_usd || 0), 0));
  const max = Math.max(...totals, 0);
  const slot = (width - left) / days.length;
  svg.append(el("svg:line", { class: "axis", x1: left, x2: width, y1: height - bottom, y2: height - bottom }));
  days.forEach((day, i) => {
    let top = height - bottom;
    for (const row of day.rows) {
      const value = Number(row.cost_usd || 0);
      if (value <= 0 || max <= 0) continue;
      const h = ((height - bottom - 10) * value) / max;
      top -= h;
      svg.append(
        el("svg:rect", {
          x: left + i * slot + slot * 0.15,
          y: top,
          width: slot * 0.7,
          height: h,
          fill: colors.get(row.feature),
          "data-day": day.label,
          "data-feature": row.feature,
        }),
      );
    }
    if (days.length <= 14 || i % Math.ceil(days.length / 10) === 0) {
      svg.append(el("svg:text", { x: left + i * slot + slot * 0.15, y: height - 6 }, day.label.slice(5)));
    }
  });
  document.getElementById("chart-daily").replaceChildren(svg);
}

function renderCacheBars(rows, colors) {
  const width = 560;
  const barHeight = 18;
  const labelWidth = 150;
  const withInput = rows.filter((row) => row.input_tokens > 0);
  const height = Math.max(withInput.length, 1) * (barHeight + 8) + 8;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Cache hit rate" });
  withInput.forEach((row, i) => {
    const y = 8 + i * (barHeight + 8);
    const rate = row.cache_read_tokens / row.input_tokens;
    const label = row.feature.length > 21 ? row.feature.slice(0, 20) + "…" : row.feature;
    svg.append(el("svg:text", { x: 0, y: y + 13 }, label));
    svg.append(el("svg:rect", { x: labelWidth, y, width: width - labelWidth - 70, height: barHeight, fill: "#e4e7eb" }));
    const w = Math.max((width - labelWidth - 70) * rate, rate > 0 ? 1 : 0);
    svg.append(el("svg:rect", { x: labelWidth, y, width: w, height: barHeight, fill: colors.get(row.feature) }));
    svg.append(
      el("svg:text", { x: width - 64, y: y + 13, "data-feature": row.feature }, ratio(row.cache_read_tokens, row.input_tokens)),
    );
  });
  document.getElementById("chart-cache").replaceChildren(svg);
}

function renderCoverage(rows) {
  const calls = rows.reduce((acc, row) => acc + row.calls, 0);
  const unpriced = rows.reduce((acc, row) => acc + row.unpriced_calls, 0);
  const unattributed = rows.find((row) => row.feature === UNATTRIBUTED);
  const list = el("dl");
  const items = [
    ["Calls without a price", ratio(unpriced, calls), "coverage-unpriced"],
    ["Calls without a feature", ratio(unattributed ? unattributed.calls : 0, calls), "coverage-unattributed-calls"],
    [
      "Spend without a feature",
      unattributed && unattributed.share !== null ? percent(unattributed.share) : "0.0%",
      "coverage-unattributed-spend",
    ],
  ];
  for (const [label, value, id] of items) list.append(el("dt", {}, label), el("dd", { id }, value));
  document.getElementById("coverage").replaceChildren(list);
}

function renderTable(rows, colors) {
  const body = document.querySelector("#features tbody");
  body.replaceChildren();
  const reasons = document.getElementById("unpriced-reasons");
  reasons.replaceChildren();
  for (const row of rows) {
    const tr = el("tr", { "data-feature": row.feature });
    const name = el("td", { class: "feature" });
    name.append(el("span", { class: "swatch", style: `background:${colors.get(row.feature)}` }), row.feature);
    tr.append(name);
    const cells = [
      ["calls", integer(row.calls)],
      ["actions", integer(row.actions)],
      ["sessions", integer(row.sessions)],
      ["input_tokens", integer(row.input_tokens)],
      ["output_tokens", integer(row.output_tokens)],
      ["cache_read_tokens", integer(row.cache_read_tokens)],
      ["cost_usd", money(row.cost_usd)],
      ["share", percent(row.share)],
      ["unpriced_calls", row.unpriced_calls ? integer(row.unpriced_calls) : ""],
    ];
    for (const [key, text] of cells) {
      tr.append(el("td", { "data-key": key, class: key === "unpriced_calls" ? "unpriced" : "" }, text));
    }
    body.append(tr);
    for (const reason of row.unpriced_reasons) reasons.append(el("li", {}, `unpriced · ${row.feature}: ${reason}`));
  }
}

// Top tenants from the breakdown report (one row per feature x tenant): summed per tenant
// exactly. A tenant none of whose calls has a price shows "unpriced", never $0.
function topTenants(breakdownRows) {
  const tenants = new Map();
  for (const row of breakdownRows) {
    const tenant = tenants.get(row.value) || { tenant: row.value, units: 0n, calls: 0, unpriced: 0, features: 0 };
    tenant.units += toUnits(row.spend_usd);
    tenant.calls += row.calls;
    tenant.unpriced += row.unpriced_calls;
    tenant.features += 1;
    tenants.set(row.value, tenant);
  }
  const list = [...tenants.values()].map((t) => ({
    ...t,
    spend: t.calls === t.unpriced && t.units === 0n ? null : fromUnits(t.units),
  }));
  list.sort((a, b) => (a.units === b.units ? a.tenant.localeCompare(b.tenant) : a.units > b.units ? -1 : 1));
  return list.slice(0, TOP_TENANTS);
}

function renderTenants(tenants) {
  const width = 560;
  const barHeight = 18;
  const labelWidth = 150;
  const height = Math.max(tenants.length, 1) * (barHeight + 8) + 8;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Top tenants by spend" });
  const max = Math.max(...tenants.map((t) => Number(t.spend || 0)), 0);
  tenants.forEach((t, i) => {
    const y = 8 + i * (barHeight + 8);
    const name = t.tenant === "" ? "(no tenant)" : t.tenant;
    svg.append(el("svg:text", { x: 0, y: y + 13 }, name.length > 21 ? name.slice(0, 20) + "…" : name));
    if (t.spend === null || Number(t.spend) <= 0 || max <= 0) {
      svg.append(el("svg:text", { x: labelWidth, y: y + 13, class: t.spend === null ? "unpriced" : "" }, money(t.spend)));
      return;
    }
    const w = Math.max(((width - labelWidth - 90) * Number(t.spend)) / max, 1);
    svg.append(el("svg:rect", { x: labelWidth, y, width: w, height: barHeight, fill: TENANT_COLOR, "data-tenant": t.tenant }));
    svg.append(el("svg:text", { x: labelWidth + w + 6, y: y + 13 }, money(t.spend)));
  });
  document.getElementById("chart-tenants").replaceChildren(svg);
  const body = document.querySelector("#tenants tbody");
  body.replaceChildren();
  for (const t of tenants) {
    const tr = el("tr", { "data-tenant": t.tenant });
    tr.append(el("td", { "data-key": "tenant" }, t.tenant === "" ? "(no tenant)" : t.tenant));
    tr.append(el("td", { "data-key": "spend_usd", class: t.spend === null ? "unpriced" : "" }, money(t.spend)));
    tr.append(el("td", { "data-key": "calls" }, integer(t.calls)));
    tr.append(el("td", { "data-key": "unpriced_calls", class: "unpriced" }, t.unpriced ? integer(t.unpriced) : ""));
    tr.append(el("td", { "data-key": "features" }, integer(t.features)));
    body.append(tr);
  }
}

// Session cost p50/p95 per feature and week, as the weekly report computes them: over
// sessions with every call priced; none such -> "–" and the unpriced sessions counted.
function renderSessions(weeklyRows) {
  const body = document.querySelector("#sessions tbody");
  body.replaceChildren();
  const rows = [...weeklyRows].sort((a, b) => (a.week === b.week ? a.feature.localeCompare(b.feature) : a.week < b.week ? 1 : -1));
  for (const row of rows) {
    const tr = el("tr", { "data-session-row": `${row.week} ${row.feature}` });
    const change = row.median_change_pct === null ? "" : roundDecimal(plainDecimal(row.median_change_pct).replace("-", ""), 1);
    const cells = [
      ["week", row.week],
      ["feature", row.feature],
      ["sessions", integer(row.sessions)],
      ["session_p50_usd", row.session_p50_usd === null ? "–" : money(row.session_p50_usd)],
      ["session_p95_usd", row.session_p95_usd === null ? "–" : money(row.session_p95_usd)],
      ["median_change_pct", change === "" ? "" : (row.median_change_pct.startsWith("-") ? "-" : "+") + change + "%"],
      ["unpriced_sessions", row.unpriced_sessions ? integer(row.unpriced_sessions) : ""],
    ];
    for (const [key, text] of cells) {
      tr.append(el("td", { "data-key": key, class: key === "unpriced_sessions" ? "unpriced" : "" }, text));
    }
    body.append(tr);
  }
}

// The savings finder's top opportunities (opportunities report), largest $/week first.
function renderSavings(rows) {
  const body = document.querySelector("#savings tbody");
  body.replaceChildren();
  if (!rows.length) {
    const tr = el("tr");
    tr.append(el("td", { colspan: "5", class: "none" }, "No savings opportunity found in this window."));
    body.append(tr);
    return;
  }
  for (const row of rows) {
    const tr = el("tr", { "data-saving-row": `${row.kind} ${row.feature}` });
    tr.append(el("td", { "data-key": "rank" }, String(row.rank)));
    tr.append(el("td", { "data-key": "saving_per_week_usd" }, money(row.saving_per_week_usd)));
    tr.append(el("td", { "data-key": "kind" }, row.kind));
    tr.append(el("td", { "data-key": "feature" }, row.feature));
    tr.append(el("td", { "data-key": "action", class: "action" }, row.action));
    body.append(tr);
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  const environment = params.get("environment") || "production";
  const days = Math.min(Math.max(parseInt(params.get("days") || "7", 10) || 7, 1), 31);
  document.getElementById("environment").value = environment;
  document.getElementById("days").value = String(days);
  // Whole UTC days, the last one being today, so each daily bar is one report call.
  const now = new Date();
  const until = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + DAY_MS);
  const since = new Date(until.getTime() - days * DAY_MS);
  const status = document.getElementById("status");
  try {
    const dayStarts = Array.from({ length: days }, (_, i) => new Date(since.getTime() + i * DAY_MS));
    const [rows, weekly, byTenant, savings, ...daily] = await Promise.all([
      featureCosts(since, until, environment),
      report("weekly", since, until, environment),
      report("breakdown", since, until, environment, { dimension: "tenant" }),
      report("opportunities", since, until, environment, { n: "3" }),
      ...dayStarts.map((start) => featureCosts(start, new Date(start.getTime() + DAY_MS), environment)),
    ]);
    const colors = new Map(rows.map((row, i) => [row.feature, PALETTE[i % PALETTE.length]]));
    renderKpis(rows);
    renderFeatureBars(rows, colors);
    renderDailyBars(
      daily.map((dayRows, i) => ({ label: dayStarts[i].toISOString().slice(0, 10), rows: dayRows })),
      colors,
    );
    renderCacheBars(rows, colors);
    renderCoverage(rows);
    renderTenants(topTenants(byTenant));
    renderSessions(weekly);
    renderSavings(savings);
    renderTable(rows, colors);
    status.textContent = rows.length
      ? `${environment} · ${since.toISOString().slice(0, 10)} → ${until.toISOString().slice(0, 10)} (UTC, end exclusive)`
      : `No calls stored for ${environment} in the last ${days} days.`;
    document.body.dataset.ready = "true";
  } catch (error) {
    status.textContent = "Could not load the report: " + error.message;
    document.body.dataset.ready = "error";
  }
}

main();

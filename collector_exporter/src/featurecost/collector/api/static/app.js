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

// A collector started with --api-token wants it on every report request. The page takes it
// from its address (http://host:8787/#token=TOKEN: a fragment never reaches the server or
// its logs), keeps it for this tab only and drops it from the address bar.
const TOKEN_KEY = "featurecost-api-token";

function apiHeaders() {
  const fromAddress = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromAddress) {
    sessionStorage.setItem(TOKEN_KEY, fromAddress);
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

async function report(name, since, until, environment, extra) {
  const params = new URLSearchParams({ since: since.toISOString(), until: until.toISOString(), environment, ...extra });
  const response = await fetch(`api/v1/reports/${name}?` + params.toString(), { headers: apiHeaders() });
  if (response.status === 401) throw new Error("this collector needs its API token: open the page as " + location.origin + location.pathname + "#token=YOUR_API_TOKEN");
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

// A "nice" axis step (1, 2 or 5 x 10^k) so that about `ticks` gridlines cover `max`.
function niceStep(max, ticks) {
  const raw = max / ticks;
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

// Axis labels: dollars with as many decimals as the step needs (chart geometry only).
function axisMoney(value, step) {
  const places = step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step)));
  return "$" + value.toFixed(places);
}

function renderDailyBars(days, colors) {
  const width = 560;
  const height = 260;
  const bottom = 24;
  const left = 58;
  const top = 18;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Daily cost by feature" });
  const totals = days.map((day) => sumDecimals(day.rows.map((row) => row.cost_usd)));
  const max = Math.max(...totals.map(Number), 0);
  const step = max > 0 ? niceStep(max, 4) : 1;
  const axisMax = max > 0 ? Math.ceil(max / step) * step : 1;
  const plot = height - bottom - top;
  const y = (value) => height - bottom - (plot * value) / axisMax;
  for (let tick = 0; tick <= axisMax + step / 2; tick += step) {
    svg.append(el("svg:line", { class: tick === 0 ? "axis" : "grid", x1: left, x2: width, y1: y(tick), y2: y(tick) }));
    svg.append(el("svg:text", { class: "tick", x: left - 6, y: y(tick) + 4, "text-anchor": "end" }, axisMoney(tick, step)));
  }
  svg.append(el("svg:line", { class: "axis", x1: left, x2: left, y1: top - 4, y2: height - bottom }));
  const slot = (width - left) / days.length;
  days.forEach((day, i) => {
    let stackTop = height - bottom;
    for (const row of day.rows) {
      const value = Number(row.cost_usd || 0);
      if (value <= 0) continue;
      const h = (plot * value) / axisMax;
      stackTop -= h;
      const rect = el("svg:rect", {
        x: left + i * slot + slot * 0.15,
        y: stackTop,
        width: slot * 0.7,
        height: h,
        fill: colors.get(row.feature) || PALETTE[PALETTE.length - 1],
        "data-day": day.label,
        "data-feature": row.feature,
      });
      rect.append(el("svg:title", {}, `${day.label} · ${row.feature}: ${money(row.cost_usd)}`));
      svg.append(rect);
    }
    const center = left + i * slot + slot / 2;
    if (Number(totals[i]) > 0 && days.length <= 14) {
      svg.append(el("svg:text", { class: "value", x: center, y: stackTop - 4, "text-anchor": "middle", "data-day-total": day.label }, shortMoney(totals[i])));
    }
    if (days.length <= 14 || i % Math.ceil(days.length / 10) === 0) {
      svg.append(el("svg:text", { class: "tick", x: center, y: height - 7, "text-anchor": "middle" }, day.label.slice(5)));
    }
  });
  const legend = el("div", { class: "legend", id: "daily-legend" });
  for (const [feature, color] of colors) {
    const item = el("span", { class: "legend-item", "data-feature": feature });
    item.append(el("span", { class: "swatch", style: `background:${color}` }), feature);
    legend.append(item);
  }
  document.getElementById("chart-daily").replaceChildren(svg, legend);
}

// Money for chart labels: cents from a dollar up, four decimals below (exact, from the decimal string).
function shortMoney(text) {
  const plain = plainDecimal(text);
  const abs = plain.replace("-", "");
  const sign = plain.startsWith("-") ? "-" : "";
  const places = Number(abs) >= 1 ? 2 : 4;
  const [whole, frac] = roundDecimal(abs, places).split(".");
  return sign + "$" + Number(whole).toLocaleString("en-US") + "." + frac;
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

// Sum breakdown rows (feature x value) per value: exact money, "unpriced" when nothing had a price.
function byValue(breakdownRows) {
  const groups = new Map();
  for (const row of breakdownRows) {
    const group = groups.get(row.value) || { value: row.value, units: 0n, calls: 0, unpriced: 0, actions: 0 };
    group.units += toUnits(row.spend_usd);
    group.calls += row.calls;
    group.unpriced += row.unpriced_calls;
    group.actions += row.actions;
    groups.set(row.value, group);
  }
  const list = [...groups.values()].map((g) => ({ ...g, spend: g.calls === g.unpriced && g.units === 0n ? null : fromUnits(g.units) }));
  list.sort((a, b) => (a.units === b.units ? a.value.localeCompare(b.value) : a.units > b.units ? -1 : 1));
  return list;
}

function horizontalBars(containerId, label, items, color, dataKey) {
  const width = 560;
  const barHeight = 18;
  const labelWidth = 190;
  const height = Math.max(items.length, 1) * (barHeight + 8) + 8;
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  const max = Math.max(...items.map((item) => Number(item.spend || 0)), 0);
  items.forEach((item, i) => {
    const y = 8 + i * (barHeight + 8);
    const name = item.value === "" ? "(none)" : item.value;
    const text = el("svg:text", { x: 0, y: y + 13 }, name.length > 26 ? name.slice(0, 25) + "…" : name);
    text.append(el("svg:title", {}, name));
    svg.append(text);
    if (item.spend === null || Number(item.spend) <= 0 || max <= 0) {
      svg.append(el("svg:text", { x: labelWidth, y: y + 13, class: item.spend === null ? "unpriced" : "" }, money(item.spend)));
      return;
    }
    const w = Math.max(((width - labelWidth - 90) * Number(item.spend)) / max, 1);
    svg.append(el("svg:rect", { x: labelWidth, y, width: w, height: barHeight, fill: color, [dataKey]: item.value }));
    svg.append(el("svg:text", { x: labelWidth + w + 6, y: y + 13 }, shortMoney(item.spend)));
  });
  document.getElementById(containerId).replaceChildren(svg);
}

const MODEL_COLOR = "#486581";

function renderModels(models) {
  horizontalBars("chart-models", "Cost by model", models.slice(0, 10), MODEL_COLOR, "data-model");
}

// Revenue, margin and cache savings: the margin report (imported revenue, prorated) and the
// cache report (dollars saved at each tenant's prices).
function renderMoneyKpis(marginRows, cacheRows) {
  const box = document.getElementById("kpis");
  const withRevenue = marginRows.filter((row) => row.revenue_usd !== null);
  const revenue = withRevenue.length ? sumDecimals(withRevenue.map((row) => row.revenue_usd)) : null;
  const margin = withRevenue.length ? sumDecimals(withRevenue.map((row) => row.margin_usd)) : null;
  const saved = sumDecimals(cacheRows.map((row) => row.saved_usd));
  const cards = [
    ["Revenue (imported)", revenue === null ? "not imported" : shortMoney(revenue), "kpi-revenue"],
    ["Margin", margin === null ? "–" : shortMoney(margin), "kpi-margin"],
    ["Cache savings", shortMoney(saved), "kpi-cache-saved"],
  ];
  for (const [label, value, id] of cards) {
    const card = el("div", { class: "kpi", id });
    card.append(el("div", { class: "label" }, label), el("div", { class: "value" }, value));
    box.append(card);
  }
  const body = document.querySelector("#margin tbody");
  body.replaceChildren();
  for (const row of marginRows) {
    const tr = el("tr", { "data-margin-tenant": row.tenant });
    const cells = [
      ["tenant", row.tenant === "" ? "(no tenant)" : row.tenant],
      ["revenue_usd", row.revenue_usd === null ? "–" : shortMoney(row.revenue_usd)],
      ["spend_usd", row.calls > 0 && row.calls === row.unpriced_calls ? "unpriced" : shortMoney(row.spend_usd)],
      ["margin_usd", row.margin_usd === null ? "–" : shortMoney(row.margin_usd)],
      ["margin_pct", row.margin_pct === null ? "–" : roundDecimal(plainDecimal(row.margin_pct).replace("-", ""), 1).replace(/^/, row.margin_pct.startsWith("-") ? "-" : "") + "%"],
      ["active_users", row.active_users === null ? "–" : integer(row.active_users)],
    ];
    for (const [key, text] of cells) tr.append(el("td", { "data-key": key }, text));
    body.append(tr);
  }
  document.getElementById("margin-empty").hidden = withRevenue.length > 0;
}

async function fillEnvironmentPicker(current) {
  const picker = document.getElementById("environment");
  let names = [];
  try {
    const response = await fetch("api/v1/catalog", { headers: apiHeaders() });
    if (response.ok) names = (await response.json()).environments.map((e) => e.name);
  } catch (error) {
    names = [];
  }
  if (!names.includes(current)) names.unshift(current);
  picker.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
  picker.value = current;
}

function simpleTable(id, rows, columns) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  for (const row of rows) {
    const tr = el("tr", { "data-row": row.value === undefined ? row.root_id : row.value });
    for (const [key, text] of columns(row)) tr.append(el("td", { "data-key": key }, text));
    body.append(tr);
  }
}

// Drill-down: one feature's tenants, models, versions and costliest user actions; each
// action's costliest call links to how it was priced (prices explain).
async function openDrilldown(feature, window) {
  const panel = document.getElementById("drilldown");
  panel.hidden = false;
  panel.dataset.feature = feature;
  panel.dataset.state = "loading";
  document.getElementById("drill-title").textContent = feature;
  document.getElementById("explain").replaceChildren();
  const { since, until, environment } = window;
  const [tenants, models, versions, outliers] = await Promise.all([
    report("breakdown", since, until, environment, { dimension: "tenant", feature }),
    report("breakdown", since, until, environment, { dimension: "model", feature }),
    report("breakdown", since, until, environment, { dimension: "version", feature }),
    report("outliers", since, until, environment, { n: "1000" }),
  ]);
  const spendColumns = (label) => (row) => [
    [label, row.value === "" ? "(none)" : row.value],
    ["spend_usd", money(row.spend)],
    ["calls", integer(row.calls)],
    ["actions", integer(row.actions)],
    ["unpriced_calls", row.unpriced ? integer(row.unpriced) : ""],
  ];
  simpleTable("drill-tenants", byValue(tenants), spendColumns("tenant"));
  simpleTable("drill-models", byValue(models), spendColumns("model"));
  simpleTable("drill-versions", byValue(versions), spendColumns("version"));
  const actions = outliers.filter((row) => row.feature === feature).slice(0, 10);
  const body = document.querySelector("#drill-actions tbody");
  body.replaceChildren();
  for (const action of actions) {
    const tr = el("tr", { "data-action": action.root_id });
    tr.append(el("td", { "data-key": "first_call" }, action.first_call.slice(0, 16).replace("T", " ")));
    tr.append(el("td", { "data-key": "tenant" }, action.tenant === "" ? "(no tenant)" : action.tenant));
    tr.append(el("td", { "data-key": "user" }, action.user_id));
    tr.append(el("td", { "data-key": "calls" }, integer(action.calls)));
    tr.append(el("td", { "data-key": "spend_usd", class: action.calls === action.unpriced_calls ? "unpriced" : "" },
      action.calls === action.unpriced_calls ? "unpriced" : money(action.spend_usd)));
    const span = el("td", { "data-key": "span_id" });
    const link = el("a", { href: `api/v1/prices/explain?span_id=${action.span_id}&trace_id=${action.trace_id}`, "data-span": action.span_id }, action.span_id);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      explain(action.span_id, action.trace_id);
    });
    span.append(link);
    tr.append(span);
    body.append(tr);
  }
  document.getElementById("drill-actions-empty").hidden = actions.length > 0;
  panel.dataset.state = "loaded";
  return actions;
}

async function explain(spanId, traceId) {
  const box = document.getElementById("explain");
  const response = await fetch(`api/v1/prices/explain?span_id=${encodeURIComponent(spanId)}&trace_id=${encodeURIComponent(traceId)}`, { headers: apiHeaders() });
  if (!response.ok) {
    box.replaceChildren(el("p", { class: "error" }, "explain answered " + response.status + ": " + (await response.text())));
    return;
  }
  const payload = await response.json();
  const list = el("dl", { id: "explain-lines", "data-span": spanId });
  for (const [section, lines] of [["as stored", payload.stored], ["priced now", payload.now]]) {
    list.append(el("dt", { class: "section" }, `call ${spanId} ${section}`), el("dd", { class: "section" }, ""));
    for (const [key, value] of lines) list.append(el("dt", {}, key), el("dd", {}, value));
  }
  box.replaceChildren(list);
  box.dataset.state = "loaded";
}

function wireDrilldown(window) {
  const open = (feature) => {
    const url = new URL(location.href);
    url.searchParams.set("feature", feature);
    history.replaceState(null, "", url);
    openDrilldown(feature, window).catch((error) => {
      document.getElementById("drill-title").textContent = feature + " — could not load: " + error.message;
    });
  };
  for (const node of document.querySelectorAll("#features tr[data-feature], #chart-features [data-feature]")) {
    node.classList.add("clickable");
    node.addEventListener("click", () => open(node.getAttribute("data-feature")));
  }
}

// What-if: the open feature's calls re-priced at another model (the whatif report), per week,
// with cost per user action and the tokenizer caveat; an unpriceable model says so.
async function runWhatif(feature, model, window) {
  const box = document.getElementById("whatif");
  box.dataset.state = "loading";
  box.replaceChildren(el("p", { class: "hint" }, `Re-pricing ${feature} at ${model}…`));
  const { since, until, environment } = window;
  const params = new URLSearchParams({ since: since.toISOString(), until: until.toISOString(), environment, feature, model });
  const response = await fetch("api/v1/reports/whatif?" + params.toString(), { headers: apiHeaders() });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    box.replaceChildren(el("p", { class: "error" }, payload.error || "report API answered " + response.status));
    box.dataset.state = "error";
    return;
  }
  const table = el("table", { id: "whatif-weeks" });
  const head = el("tr");
  for (const name of ["week", "calls", "actual", payload.target, "change", "unpriced"]) head.append(el("th", {}, name));
  table.append(el("thead"), el("tbody"));
  table.tHead.append(head);
  for (const row of payload.rows) {
    const tr = el("tr", { "data-week": row.week });
    tr.append(el("td", { "data-key": "week" }, row.week));
    tr.append(el("td", { "data-key": "calls" }, integer(row.calls)));
    tr.append(el("td", { "data-key": "actual_usd" }, money(row.actual_usd)));
    tr.append(el("td", { "data-key": "whatif_usd" }, money(row.whatif_usd)));
    tr.append(el("td", { "data-key": "change_pct" }, row.change_pct === null ? "–" : roundDecimal(plainDecimal(row.change_pct), 1) + "%"));
    tr.append(el("td", { "data-key": "unpriced_calls", class: "unpriced" }, row.unpriced_calls ? integer(row.unpriced_calls) : ""));
    table.tBodies[0].append(tr);
  }
  const t = payload.totals;
  const a = payload.actions;
  const quantile = (value) => (value === null ? "–" : money(value));
  box.replaceChildren(
    el("p", { id: "whatif-totals" }, `${integer(t.calls)} calls: ${money(t.actual_usd)} actual → ${money(t.whatif_usd)} at ${payload.target} (difference ${money(t.difference_usd)})`),
    el("p", { id: "whatif-actions" }, `per user action (${integer(a.actions)}): p50 ${quantile(a.actual_p50_usd)} → ${quantile(a.whatif_p50_usd)}, p95 ${quantile(a.actual_p95_usd)} → ${quantile(a.whatif_p95_usd)}`),
    table,
    el("p", { id: "whatif-caveat", class: "hint" }, payload.caveat),
  );
  box.dataset.state = "loaded";
}

function wireWhatif(window) {
  document.getElementById("whatif-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const feature = document.getElementById("drilldown").dataset.feature;
    const model = document.getElementById("whatif-model").value.trim();
    if (!feature || !model) return;
    const url = new URL(location.href);
    url.searchParams.set("whatif", model);
    history.replaceState(null, "", url);
    runWhatif(feature, model, window).catch((error) => {
      document.getElementById("whatif").replaceChildren(el("p", { class: "error" }, error.message));
      document.getElementById("whatif").dataset.state = "error";
    });
  });
}

async function main() {
  const params = new URLSearchParams(location.search);
  const environment = params.get("environment") || "production";
  const days = Math.min(Math.max(parseInt(params.get("days") || "7", 10) || 7, 1), 90);
  const daysPicker = document.getElementById("days");
  if (![...daysPicker.options].some((option) => option.value === String(days))) {
    daysPicker.append(el("option", { value: String(days) }, String(days)));
  }
  daysPicker.value = String(days);
  const form = document.getElementById("controls");
  for (const picker of form.querySelectorAll("select")) picker.addEventListener("change", () => form.submit());
  // Whole UTC days, the last one being today, so each daily bar is one report call.
  const now = new Date();
  const until = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()) + DAY_MS);
  const since = new Date(until.getTime() - days * DAY_MS);
  const status = document.getElementById("status");
  try {
    const dayStarts = Array.from({ length: days }, (_, i) => new Date(since.getTime() + i * DAY_MS));
    const [, rows, weekly, byTenant, byModel, margin, cache, savings, ...daily] = await Promise.all([
      fillEnvironmentPicker(environment),
      featureCosts(since, until, environment),
      report("weekly", since, until, environment),
      report("breakdown", since, until, environment, { dimension: "tenant" }),
      report("breakdown", since, until, environment, { dimension: "model" }),
      report("margin", since, until, environment),
      report("cache", since, until, environment),
      report("opportunities", since, until, environment, { n: "3" }),
      ...dayStarts.map((start) => featureCosts(start, new Date(start.getTime() + DAY_MS), environment)),
    ]);
    const colors = new Map(rows.map((row, i) => [row.feature, PALETTE[i % PALETTE.length]]));
    renderKpis(rows);
    renderMoneyKpis(margin, cache);
    renderFeatureBars(rows, colors);
    renderDailyBars(
      daily.map((dayRows, i) => ({ label: dayStarts[i].toISOString().slice(0, 10), rows: dayRows })),
      colors,
    );
    renderModels(byValue(byModel));
    renderCacheBars(rows, colors);
    renderCoverage(rows);
    renderTenants(topTenants(byTenant));
    renderSessions(weekly);
    renderSavings(savings);
    renderTable(rows, colors);
    wireDrilldown({ since, until, environment });
    wireWhatif({ since, until, environment });
    status.textContent = rows.length
      ? `${environment} · ${since.toISOString().slice(0, 10)} → ${until.toISOString().slice(0, 10)} (UTC, end exclusive) · click a feature for its tenants, models, versions and costliest actions`
      : `No calls stored for ${environment} in the last ${days} days.`;
    const feature = params.get("feature");
    const target = feature && [...document.querySelectorAll("#features tr[data-feature]")].find((tr) => tr.dataset.feature === feature);
    if (target) {
      // a shared link opens the same drill-down, through the same click handler
      target.click();
      await waitFor(() => document.getElementById("drilldown").dataset.state === "loaded");
      const whatif = params.get("whatif");
      if (whatif) {
        // a shared link re-runs the same what-if
        document.getElementById("whatif-model").value = whatif;
        await runWhatif(feature, whatif, { since, until, environment });
      }
      const span = params.get("span");
      const link = span && document.querySelector(`#drill-actions a[data-span="${CSS.escape(span)}"]`);
      if (link) {
        link.click();
        await waitFor(() => document.getElementById("explain").dataset.state === "loaded");
      }
    }
    document.body.dataset.ready = "true";
  } catch (error) {
    status.textContent = "Could not load the report: " + error.message;
    document.body.dataset.ready = "error";
  }
}

// Resolve once `condition` holds (checked on a timer, which headless virtual time advances; gives up after 10 s).
function waitFor(condition) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const check = () => {
      if (condition()) resolve();
      else if (performance.now() - started > 10000) reject(new Error("timed out"));
      else setTimeout(check, 20);
    };
    check();
  });
}

main();

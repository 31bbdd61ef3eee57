// The page's script. Every value that comes from the API is put on the page as text (textContent) or as a
// property, never parsed as HTML: camera and sighting ids, states and errors are data, not markup.
"use strict";
const $ = (id) => document.getElementById(id);
const STATES = new Set(["connecting", "streaming", "reconnecting", "ended", "stopped", "failed"]);
let key = localStorage.getItem("crosscam-key") || new URLSearchParams(location.hash.slice(1)).get("key") || "";
$("key").value = key;
$("save").onclick = () => { key = $("key").value; localStorage.setItem("crosscam-key", key); refresh(); };

// an element with optional class and text
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
async function api(path, options = {}) {
  const r = await fetch(path, {...options, headers: {"X-API-Key": key}});
  if (!r.ok) { const body = await r.json().catch(() => ({})); throw new Error(body.detail || r.statusText); }
  return r;
}
async function thumb(sighting) {
  const blob = await (await api(`/api/sightings/${encodeURIComponent(sighting)}/thumbnail`)).blob();
  return URL.createObjectURL(blob);
}
async function timeline(person, target) {
  const h = await (await api(`/api/persons/${encodeURIComponent(person)}`)).json();
  const out = el("div");
  for (const cam of h.cameras) {
    const lane = el("div", undefined, "lane");
    lane.appendChild(el("b", String(cam)));
    for (const s of h.sightings.filter((s) => s.camera === cam)) {
      const seg = el("div", undefined, "seg");
      const img = el("img");
      img.alt = String(s.sighting);
      try { img.src = await thumb(s.sighting); } catch (e) { /* no thumbnail: its alt text stands in */ }
      seg.appendChild(img);
      seg.appendChild(document.createTextNode(`${s.t_start.toFixed(1)}–${s.t_end.toFixed(1)} s`));
      seg.title = `${s.sighting}: ${s.decision}` + (s.score === null ? "" : ` (score ${s.score.toFixed(3)})`);
      lane.appendChild(seg);
    }
    out.appendChild(lane);
  }
  target.replaceChildren(out);
  return h;
}
async function show(person) {
  $("title").textContent = `Person ${person}`;
  await timeline(person, $("timeline"));
}
async function refresh() {
  try {
    $("error").textContent = "";
    const cams = await (await api("/api/cameras")).json();
    const badges = cams.cameras.map((c) => el("span", `${c.camera}: ${c.state}`, STATES.has(c.state) ? c.state : ""));
    if (badges.length) $("cameras").replaceChildren(...badges); else $("cameras").textContent = "none reported";
    const ps = await (await api("/api/persons")).json();
    $("persons").replaceChildren(...ps.persons.map((p) => {
      const li = el("li", `person ${p.person}: ${p.sightings} sightings on ${p.cameras.join(", ")}`);
      li.onclick = () => show(p.person);
      return li;
    }));
    document.body.dataset.loaded = "yes";
  } catch (e) { $("error").textContent = e.message; }
}
$("search").onsubmit = async (ev) => {
  ev.preventDefault();
  const form = new FormData();
  for (const f of $("files").files) form.append("images", f);
  try {
    const r = await (await api("/api/search", {method: "POST", body: form})).json();
    $("results").replaceChildren(...r.results.map((x) => {
      const p = el("p");
      const a = el("a", `person ${x.person}`);
      a.href = "#";
      a.onclick = (e) => { e.preventDefault(); show(x.person); };
      p.append(a, ` score ${x.score.toFixed(3)}`);
      return p;
    }));
  } catch (e) { $("error").textContent = e.message; }
};
refresh();
setInterval(refresh, 5000);

"use strict";
// The page uses only the JSON API of scripts/webapp.py. Each section's data-state (idle, busy, done, error)
// says where it stands, for people and for the browser test.

const $ = (id) => document.getElementById(id);

async function api(path, options) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error(`the server did not answer (${error.message}); is python -m scripts.serve still running?`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`the server answered HTTP ${response.status} without JSON`);
  }
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function setState(section, state, error) {
  $(`${section}-section`).dataset.state = state;
  const box = $(`${section}-error`);
  box.hidden = !error;
  box.textContent = error || "";
}

// Tiny or untrained models give confidences like 1e-12: show those in exponent form, not as 0.0%.
function formatConfidence(value) {
  if (value === null || value === undefined) return "n/a";
  return value >= 0.001 ? `${(value * 100).toFixed(1)}%` : value.toExponential(1);
}

const png = (base64) => `data:image/png;base64,${base64}`;

// Images show at a fixed height; a vertical one (taller than wide) gets a larger one (style.css).
function markTall(img) {
  img.addEventListener("load", () => img.classList.toggle("tall", img.naturalHeight > img.naturalWidth));
}

async function readImage(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    setState("read", "error", `${file.name} is ${file.type}, not an image; pick a PNG or JPEG crop`);
    return;
  }
  setState("read", "busy");
  $("read-original").src = URL.createObjectURL(file);
  const form = new FormData();
  form.append("image", file, file.name || "pasted.png");
  try {
    const result = await api("/api/read", { method: "POST", body: form });
    $("read-text").textContent = result.text;
    $("read-confidence").textContent = formatConfidence(result.confidence);
    $("read-ms").textContent = Math.round(result.ms);
    $("read-grid").textContent = result.grid.join("×");
    $("read-input").src = png(result.input_png_base64);
    $("read-reconstruction").src = png(result.reconstruction_png_base64);
    $("read-result").hidden = false;
    setState("read", "done");
  } catch (error) {
    setState("read", "error", error.message);
  }
}

function candidateFigure(image) {
  const figure = document.createElement("figure");
  figure.className = "candidate" + (image.exact ? " exact" : "");
  const caption = document.createElement("figcaption");
  if (image.png_base64) {
    const img = document.createElement("img");
    markTall(img);
    img.src = png(image.png_base64);
    img.alt = `candidate read back as ${image.read_back}`;
    figure.append(img);
    caption.textContent = `reads “${image.read_back}” (${formatConfidence(image.confidence)})`;
  } else {
    caption.textContent = `could not be decoded: ${image.error}`;
  }
  figure.append(caption);
  return figure;
}

async function draw(event) {
  event.preventDefault();
  setState("draw", "busy");
  $("draw-button").disabled = true;
  $("draw-meta").textContent = "drawing…";
  const body = {
    prompt: $("prompt").value,
    num_candidates: Number($("num-candidates").value),
    seed: Number($("seed").value),
    vertical: $("vertical").checked,
  };
  try {
    const result = await api("/api/generate", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    $("candidates").replaceChildren(...result.images.map(candidateFigure));
    const exact = result.images.filter((image) => image.exact).length;
    $("draw-meta").textContent = `${result.images.length} candidates, best first; ${exact} read back exactly · ` +
      `${Math.round(result.ms)} ms`;
    setState("draw", "done");
  } catch (error) {
    $("draw-meta").textContent = "";
    setState("draw", "error", error.message);
  } finally {
    $("draw-button").disabled = false;
  }
}

async function showModels() {
  try {
    const health = await api("/api/health");
    $("models").textContent = `reading with ${health.read_model}; ` +
      (health.draw_model ? `drawing with ${health.draw_model}` : "no drawing model (start with --draw-model DIR)");
    $("num-candidates").max = health.max_candidates;
    if (!health.draw_model) {
      for (const element of $("draw-form").elements) element.disabled = true;
    }
  } catch (error) {
    $("models").textContent = error.message;
  }
}

["read-original", "read-input", "read-reconstruction"].forEach((id) => markTall($(id)));
$("file").addEventListener("change", (event) => readImage(event.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  readImage(event.dataTransfer.files[0]);
});
// Paste anywhere; a paste without an image (text into the prompt box) is left to the browser.
document.addEventListener("paste", (event) => {
  const item = [...event.clipboardData.items].find((entry) => entry.kind === "file" && entry.type.startsWith("image/"));
  if (!item) return;
  event.preventDefault();
  readImage(item.getAsFile());
});
$("draw-form").addEventListener("submit", draw);
showModels();

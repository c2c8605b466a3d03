// The classifier page's script: choose / drop / paste an image, preview it, POST its bytes to /api/predict,
// show the class (Chinese and English), the confidence and every class's probability as bars.
// Not a framework and not a build output: plain browser JavaScript. Everything shown that comes from a
// file or the server (file names, class names, error messages) is set with textContent, never as HTML.
'use strict';

(function main() {
  const $ = (id) => document.getElementById(id);
  const dropZone = $('drop-zone');
  const preview = $('preview');
  const fileInput = $('file-input');
  const runButton = $('run-button');
  const statusEl = $('status');
  let classes = null; // [{ index, label, label_zh }] from /api/model
  let current = null; // { blob, name }
  let previewUrl = null;

  function setStatus(text, isError) {
    statusEl.textContent = text;
    statusEl.classList.toggle('error', Boolean(isError));
  }

  function percent(p) {
    return (p * 100).toFixed(2) + '%';
  }

  function setImage(blob, name) {
    current = { blob, name };
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(blob);
    preview.src = previewUrl;
    preview.hidden = false;
    $('drop-hint').hidden = true;
    $('file-name').textContent = name + ' (' + blob.size + ' bytes)';
    $('result').hidden = true;
    runButton.disabled = false;
    setStatus('点“运行”开始分类 · Press Run to classify', false);
  }

  function nameOf(index) {
    const c = classes && classes[index];
    return c ? { zh: c.label_zh, en: c.label } : { zh: 'class_' + index, en: 'class_' + index };
  }

  function drawBars(probs, top) {
    const list = $('bars');
    list.replaceChildren();
    probs.forEach((p, i) => {
      const li = document.createElement('li');
      li.dataset.index = String(i);
      if (i === top) li.className = 'top';
      const label = document.createElement('span');
      const n = nameOf(i);
      label.textContent = n.zh + ' ' + n.en;
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('div');
      fill.style.width = Math.max(0, Math.min(100, p * 100)).toFixed(2) + '%';
      bar.appendChild(fill);
      const pct = document.createElement('span');
      pct.className = 'pct';
      pct.textContent = percent(p);
      li.append(label, bar, pct);
      list.appendChild(li);
    });
  }

  function showResult(r) {
    const box = $('result');
    box.dataset.index = String(r.index);
    box.dataset.label = r.label;
    box.dataset.confidence = String(r.confidence);
    $('result-zh').textContent = r.label_zh;
    $('result-en').textContent = r.label;
    $('result-confidence').textContent = percent(r.confidence);
    box.hidden = false;
    drawBars(r.probs, r.index);
    setStatus('完成 · Done in ' + r.ms + ' ms', false);
  }

  async function run() {
    if (!current) return;
    runButton.disabled = true;
    setStatus('运行中… · Running…', false);
    try {
      const res = await fetch('/api/predict', {
        method: 'POST',
        body: current.blob,
        headers: { 'Content-Type': 'application/octet-stream' },
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        const msg = body && body.error ? body.error.message : 'HTTP ' + res.status;
        $('result').hidden = true;
        setStatus('出错 · Error (' + res.status + '): ' + msg, true);
        return;
      }
      showResult(body);
    } catch (err) {
      setStatus('请求失败 · Request failed: ' + err.message, true);
    } finally {
      runButton.disabled = false;
    }
  }

  function firstImageFile(items) {
    for (const f of items || []) if (f && f.size !== undefined) return f;
    return null;
  }

  $('choose-button').addEventListener('click', () => fileInput.click());
  fileInput.addEventListener('change', () => {
    const f = fileInput.files && fileInput.files[0];
    if (f) setImage(f, f.name);
  });
  runButton.addEventListener('click', run);

  dropZone.addEventListener('dragover', (e) => {
    e.preventDefault();
    dropZone.classList.add('dragging');
  });
  dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
  dropZone.addEventListener('drop', (e) => {
    e.preventDefault();
    dropZone.classList.remove('dragging');
    const f = firstImageFile(e.dataTransfer && e.dataTransfer.files);
    if (f) setImage(f, f.name);
  });
  document.addEventListener('paste', (e) => {
    const files = e.clipboardData ? Array.from(e.clipboardData.files) : [];
    const f = firstImageFile(files);
    if (f) {
      e.preventDefault();
      setImage(f, f.name || 'pasted image');
    }
  });

  fetch('/api/model')
    .then((r) => r.json())
    .then((m) => {
      classes = m.classes;
      $('model-info').textContent =
        'Model: ' + m.arch + ', ' + m.num_classes + ' classes, weights ' + m.weights.file +
        ' (' + m.weights.format + '), ' + m.backend + ' backend';
      drawBars(new Array(m.num_classes).fill(0), -1);
    })
    .catch((err) => setStatus('无法读取模型信息 · Could not read the model info: ' + err.message, true));
  // The body is read even when no run is watched (a 404): the browser counts a response whose body nobody
  // reads as a request still loading, so the page would never reach network idle.
  fetch('/api/run')
    .then((r) => {
      if (r.ok) $('dashboard-link').hidden = false;
      return r.text();
    })
    .catch(() => {});
})();

// The training dashboard's script: polls GET /api/run/metrics?from=OFFSET every few seconds, keeps the records
// it has seen, and redraws the curves. The server returns only complete lines, so a line being written is
// picked up on a later poll; `reset` (the file was replaced by a new run) starts over.
// Not a metrics store: everything lives in this page's memory.
'use strict';

(function main() {
  const POLL_MS = 3000;
  const $ = (id) => document.getElementById(id);
  let offset = 0;
  let steps = [];
  let epochs = [];

  // epoch fields of src/train/evaluate.ts shown when present, after train and test
  const OPTIONAL = [
    { key: 'test_acc_tta', name: 'test TTA', color: '#e8b56f' },
    { key: 'val_acc', name: 'val', color: '#3a9f5a' },
    { key: 'ema_test_acc', name: 'test EMA', color: '#9b4dca' },
  ];
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : NaN);
  // accuracies may be written as fractions (0..1) or percentages; show percentages
  const asPercent = (values) => (values.every((v) => !Number.isFinite(v) || v <= 1) ? values.map((v) => v * 100) : values);

  // records are src/run/metrics.ts's MetricsRecord: `kind` tells them apart
  function ingest(records) {
    for (const r of records) {
      if (r.kind === 'step') steps.push([num(r.step), num(r.loss)]);
      else if (r.kind === 'epoch') epochs.push(r);
    }
  }

  function fmt(v, digits) {
    return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '–';
  }

  function render() {
    const draw = window.ResnetChart.draw;
    draw($('chart-step-loss'), {
      title: 'Loss per step 每步损失',
      xLabel: 'step',
      series: [{ name: 'loss', color: '#2f6fde', width: 1, points: steps }],
    });
    const ep = epochs.map((r) => num(r.epoch));
    const pts = (key) => epochs.map((r, i) => [ep[i], num(r[key])]);
    draw($('chart-epoch-loss'), {
      title: 'Loss per epoch 每轮损失',
      xLabel: 'epoch',
      series: [
        { name: 'train', color: '#2f6fde', points: pts('train_loss') },
        { name: 'test', color: '#d9822b', points: pts('test_loss') },
      ],
    });
    const trainAcc = asPercent(epochs.map((r) => num(r.train_acc)));
    const testAcc = asPercent(epochs.map((r) => num(r.test_acc)));
    // what a run records besides train and test (a validation split, the EMA weights, test-time augmentation):
    // a curve and a column each, when some epoch has it
    const extra = OPTIONAL.filter((o) => epochs.some((r) => Number.isFinite(num(r[o.key]))))
      .map((o) => ({ ...o, values: asPercent(epochs.map((r) => num(r[o.key]))) }));
    draw($('chart-acc'), {
      title: 'Accuracy 准确率 (%)',
      xLabel: 'epoch',
      yFormat: (v) => v + '%',
      series: [
        { name: 'train', color: '#2f6fde', points: ep.map((e, i) => [e, trainAcc[i]]) },
        { name: 'test', color: '#d9822b', points: ep.map((e, i) => [e, testAcc[i]]) },
        ...extra.map((o) => ({ name: o.name, color: o.color, points: ep.map((e, i) => [e, o.values[i]]) })),
      ],
    });
    const head = $('epoch-head');
    head.replaceChildren();
    for (const text of ['epoch', 'train loss', 'train acc', 'test loss', 'test acc', ...extra.map((o) => o.name + ' acc'), 'lr']) {
      const th = document.createElement('th');
      th.textContent = text;
      head.appendChild(th);
    }
    const rows = $('epoch-rows');
    rows.replaceChildren();
    epochs.slice().reverse().forEach((r, j) => {
      const i = epochs.length - 1 - j;
      const tr = document.createElement('tr');
      const cells = [fmt(r.epoch, 0), fmt(r.train_loss, 4), fmt(trainAcc[i], 2) + '%', fmt(r.test_loss, 4), fmt(testAcc[i], 2) + '%',
        ...extra.map((o) => (Number.isFinite(o.values[i]) ? fmt(o.values[i], 2) + '%' : '–')),
        (typeof r.lr === 'number' ? r.lr.toPrecision(3) : '–')];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.appendChild(td);
      }
      rows.appendChild(tr);
    });
  }

  async function poll() {
    try {
      for (;;) {
        const res = await fetch('/api/run/metrics?from=' + offset);
        const body = await res.json();
        if (!res.ok) throw new Error(body && body.error ? body.error.message : 'HTTP ' + res.status);
        if (body.reset) {
          offset = 0;
          steps = [];
          epochs = [];
          continue;
        }
        ingest(body.records);
        offset = body.next;
        if (!body.more) break;
      }
      render();
      $('dash-status').textContent =
        steps.length + ' steps, ' + epochs.length + ' epochs · 每 ' + POLL_MS / 1000 + ' 秒刷新 (refreshes every ' + POLL_MS / 1000 + ' s) · ' + new Date().toLocaleTimeString();
      $('dash-status').dataset.steps = String(steps.length);
      $('dash-status').dataset.epochs = String(epochs.length);
    } catch (err) {
      $('dash-status').textContent = '读取失败 · Could not read the metrics: ' + err.message;
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }

  fetch('/api/run')
    .then((r) => r.json())
    .then((b) => {
      $('run-name').textContent = b.run || '(no run: start the server with --run RUN_DIR)';
    })
    .catch(() => {});
  poll();
})();

// A minimal line chart on <canvas> for the training dashboard: axes with "nice" ticks, several series, a legend.
// Not a charting library: linear axes only, points drawn in order, no interaction.
'use strict';

(function defineChart() {
  function niceStep(span, ticks) {
    const raw = span / Math.max(1, ticks);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
  }

  function extent(series, axis) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of series) {
      for (const p of s.points) {
        if (Number.isFinite(p[axis])) {
          lo = Math.min(lo, p[axis]);
          hi = Math.max(hi, p[axis]);
        }
      }
    }
    if (lo === Infinity) return [0, 1];
    if (lo === hi) return [lo - 1, hi + 1];
    return [lo, hi];
  }

  // Thins a long series to about `max` points (every k-th point, keeping the last) so drawing stays fast.
  function thin(points, max) {
    if (points.length <= max) return points;
    const k = Math.ceil(points.length / max);
    const out = points.filter((_, i) => i % k === 0);
    if (out[out.length - 1] !== points[points.length - 1]) out.push(points[points.length - 1]);
    return out;
  }

  function draw(canvas, opts) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const g = canvas.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const pad = { l: 56, r: 16, t: 28, b: 36 };
    const [x0, x1] = extent(opts.series, 0);
    let [y0, y1] = extent(opts.series, 1);
    if (opts.yMin !== undefined) y0 = Math.min(y0, opts.yMin);
    const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
    const sy = (y) => h - pad.b - ((y - y0) / (y1 - y0)) * (h - pad.t - pad.b);

    g.font = '12px system-ui, sans-serif';
    g.fillStyle = '#1d2330';
    g.fillText(opts.title, pad.l, 16);
    g.strokeStyle = '#d9dde4';
    g.fillStyle = '#5d6575';
    g.lineWidth = 1;
    const ys = niceStep(y1 - y0, 5);
    for (let y = Math.ceil(y0 / ys) * ys; y <= y1 + 1e-12; y += ys) {
      g.beginPath();
      g.moveTo(pad.l, sy(y));
      g.lineTo(w - pad.r, sy(y));
      g.stroke();
      g.fillText((opts.yFormat || String)(Number(y.toPrecision(6))), 4, sy(y) + 4);
    }
    const xs = niceStep(x1 - x0, 8);
    for (let x = Math.ceil(x0 / xs) * xs; x <= x1 + 1e-12; x += xs) {
      g.fillText(String(Number(x.toPrecision(6))), sx(x) - 8, h - pad.b + 16);
    }
    g.fillText(opts.xLabel || '', w - pad.r - 40, h - 4);

    let legendX = pad.l + g.measureText(opts.title).width + 24;
    for (const s of opts.series) {
      const pts = thin(s.points, 2000);
      g.strokeStyle = s.color;
      g.lineWidth = s.width || 2;
      g.beginPath();
      pts.forEach((p, i) => (i === 0 ? g.moveTo(sx(p[0]), sy(p[1])) : g.lineTo(sx(p[0]), sy(p[1]))));
      g.stroke();
      if (pts.length === 1) g.fillRect(sx(pts[0][0]) - 2, sy(pts[0][1]) - 2, 4, 4);
      g.fillStyle = s.color;
      g.fillRect(legendX, 8, 12, 4);
      g.fillStyle = '#1d2330';
      g.fillText(s.name, legendX + 16, 14);
      legendX += g.measureText(s.name).width + 36;
    }
  }

  window.ResnetChart = { draw };
})();

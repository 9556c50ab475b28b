// The decision boundary of a run on a 2-D data set: the predicted class over
// an n x n grid of the input square, as a heat map (colour = class, strength
// = the model's confidence), with the training points on top where the
// engine gives them. y grows upwards, as on a plot. Redrawn as the run's
// worker sends newer grids (a few times a second), so the boundary moves
// while the run trains.

const CLASS_RGB = [
  [11, 99, 197],
  [217, 72, 15],
  [43, 138, 62],
  [156, 54, 181],
];

export const GRID = { n: 64, lo: -1.2, hi: 1.2 };

// Draws grid `g` (and `points`, {dim, x, labels}) on `canvas`, sized to
// its box at the device's pixel ratio.
export function drawHeatmap(canvas, g, points) {
  const ratio = globalThis.devicePixelRatio || 1;
  const side = Math.max(1, Math.round((canvas.clientWidth || 288) * ratio));
  if (canvas.width !== side) {
    canvas.width = side;
    canvas.height = side;
  }
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, side, side);
  if (g) {
    const { n } = g;
    const img = new ImageData(n, n);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const i = y * n + x;
        const o = ((n - 1 - y) * n + x) * 4;
        const [r, gr, b] = CLASS_RGB[g.predicted[i] % CLASS_RGB.length];
        // confidence runs from 1/classes to 1; map it to a visible alpha.
        const c = Math.max(0, (g.confidence[i] - 1 / g.classes) / (1 - 1 / g.classes));
        img.data[o] = r;
        img.data[o + 1] = gr;
        img.data[o + 2] = b;
        img.data[o + 3] = Math.round(50 + 160 * c);
      }
    }
    // Scale up without smoothing through a canvas of the grid's own size.
    const small = document.createElement('canvas');
    small.width = n;
    small.height = n;
    small.getContext('2d').putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, side, side);
  }
  let drawn = 0;
  if (points && points.dim === 2) {
    // Cell i of the grid is the model's answer at lo + i (hi - lo) / (n - 1)
    // and is drawn over [i, i + 1) n-ths of the side: a point goes where its
    // value falls among the cells' centres.
    const { lo, hi } = GRID;
    const n = g?.n ?? GRID.n;
    const px = (v) => (((v - lo) / (hi - lo)) * (n - 1) + 0.5) * (side / n);
    const r = Math.max(1.5, 2 * ratio);
    ctx.lineWidth = Math.max(1, ratio * 0.75);
    ctx.strokeStyle = 'rgba(255,255,255,0.9)';
    for (let i = 0; i < points.labels.length; i++) {
      const [cr, cg, cb] = CLASS_RGB[points.labels[i] % CLASS_RGB.length];
      ctx.fillStyle = `rgb(${cr},${cg},${cb})`;
      ctx.beginPath();
      ctx.arc(px(points.x[2 * i]), side - px(points.x[2 * i + 1]), r, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      drawn += 1;
    }
  }
  return drawn;
}

// The decision boundary of a run on a 2-D data set: the predicted class over
// an n x n grid of the input square, as a heat map (colour = class, strength
// = the model's confidence). y grows upwards, as on a plot.

const CLASS_RGB = [
  [11, 99, 197],
  [217, 72, 15],
  [43, 138, 62],
  [156, 54, 181],
];

export const GRID = { n: 48, lo: -1.2, hi: 1.2 };

export function drawGrid(canvas, g) {
  const { n } = g;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(n, n);
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
      img.data[o + 3] = Math.round(60 + 195 * c);
    }
  }
  // Scale up without smoothing through a canvas of the grid's own size.
  const small = document.createElement('canvas');
  small.width = n;
  small.height = n;
  small.getContext('2d').putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(small, 0, 0, canvas.width, canvas.height);
}

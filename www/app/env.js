// What this browser offers for the GPU, found by asking for an adapter (not
// by the mere presence of navigator.gpu), and the banner that says it.

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render/i;

// {available, software, adapter: {vendor, architecture, description} | null, why}
export async function probeGpu() {
  if (!globalThis.isSecureContext) return { available: false, software: false, adapter: null, why: 'insecure' };
  if (!('gpu' in navigator)) return { available: false, software: false, adapter: null, why: 'no-api' };
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch {
    adapter = null;
  }
  if (!adapter) return { available: false, software: false, adapter: null, why: 'no-adapter' };
  const info = adapter.info ?? {};
  const named = { vendor: info.vendor ?? '', architecture: info.architecture ?? '', description: info.description ?? '' };
  const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || SOFTWARE.test(Object.values(named).join(' '));
  return { available: true, software, adapter: named, why: software ? 'software' : 'gpu' };
}

// Where a run asking for `backend` trains here: the engine's policy (auto
// passes a software GPU by, for the CPU engine), as the page can foresee it
// from the adapter it found.
export function resolveBackend(backend, gpu) {
  if (backend === 'cpu' || !gpu.available) return 'cpu';
  if (backend === 'gpu') return 'gpu';
  return gpu.software ? 'cpu' : 'gpu';
}

export function adapterName(a) {
  if (!a) return '';
  // Firefox withholds the adapter's names: "(not reported by the browser)".
  const parts = [a.vendor, a.architecture, a.description].filter((x) => x && !/not reported/i.test(x));
  // A description often repeats the vendor and architecture: said once.
  return parts.filter((x, i) => !parts.some((y, j) => j !== i && y.toLowerCase().includes(x.toLowerCase()) && (y.length > x.length || j < i))).join(' ');
}

// The banner at load: {text, warn}.
export function bannerText(gpu) {
  switch (gpu.why) {
    case 'insecure':
      return {
        warn: true,
        text:
          'No WebGPU here: this page was opened over plain http from another machine, and browsers offer WebGPU only ' +
          'to secure contexts (https, or http://localhost). Runs train on the CPU (WebAssembly). To use the GPU, open ' +
          'the page on this machine at http://localhost or serve it over https.',
      };
    case 'no-api':
      return { warn: true, text: 'This browser has no WebGPU (navigator.gpu is missing: switched off or not supported). Runs train on the CPU (WebAssembly).' };
    case 'no-adapter':
      return {
        warn: true,
        text: 'This browser has WebGPU, but asked for a GPU adapter it gave none (no usable GPU, or blocked). Runs train on the CPU (WebAssembly).',
      };
    case 'software': {
      const name = adapterName(gpu.adapter);
      return {
        warn: true,
        text:
          `The only WebGPU adapter here${name ? ` (${name})` : ''} is a software one: the GPU is emulated on the CPU, ` +
          'slower than the CPU engine. Backend auto trains on the CPU; choose Backend gpu to use the adapter anyway.',
      };
    }
    default: {
      const name = adapterName(gpu.adapter);
      return { warn: false, text: `WebGPU adapter found${name ? `: ${name}` : ''}. Backend auto trains on it; each run card says where it trained.` };
    }
  }
}

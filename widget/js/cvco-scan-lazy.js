// Loaded only when the shopper presses "Scan" on a browser with BarcodeDetector: opens the camera
// in an area at the end of `body`, resolves to the first Code 128 or QR code read, or null when
// stopped or unavailable; the area goes away either way.
export async function scan(body, stopLabel) {
  const area = document.createElement('div');
  area.className = 'cvco-camera';
  body.append(area);
  let stream;
  try {
    const formats = ['code_128', 'qr_code'];
    const supported = await BarcodeDetector.getSupportedFormats?.().catch(() => formats);
    const detector = new BarcodeDetector({
      formats: formats.filter((f) => !supported || supported.includes(f)),
    });
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    } catch {
      return null;
    }
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.srcObject = stream;
    const stop = document.createElement('button');
    stop.type = 'button';
    stop.className = 'cvco-secondary';
    stop.textContent = stopLabel;
    area.replaceChildren(video, stop);
    let stopped = false;
    stop.addEventListener('click', () => (stopped = true));
    await video.play();
    while (!stopped && area.isConnected) {
      const codes = await detector.detect(video).catch(() => []);
      if (codes.length) return codes[0].rawValue;
      await new Promise((r) => setTimeout(r, 150));
    }
    return null;
  } finally {
    stream?.getTracks().forEach((t) => t.stop());
    area.remove();
  }
}

// Hashes the person's images off the page's thread: a module worker around hasher.js.
// Asked {id, file}; answers {id, progress: [done, total]} while it works, then
// {id, hashes, undecoded} (undecoded: why only the digests could be made, if so) or
// {id, failed}.
import { hashFile } from "./hasher.js";

self.addEventListener("message", async ({ data: { id, file } }) => {
  try {
    const hashes = await hashFile(file, {
      onProgress: (done, total) => self.postMessage({ id, progress: [done, total] }),
    });
    self.postMessage({ id, hashes: [...hashes], undecoded: hashes.failed });
  } catch (error) {
    self.postMessage({ id, failed: String((error && error.message) || error) });
  }
});

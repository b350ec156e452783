// The Uppy test page's script (bundled by the test with esbuild): Uppy's core and S3 plugin
// talking to filepipe's Companion routes, with nothing but `endpoint` and `headers`.
import Uppy from "@uppy/core";
import AwsS3 from "@uppy/aws-s3";

const MULTIPART_FROM = 8 * 1024 * 1024; // the plugin's default is 100 MiB: keep the test small

function show(name, text) {
  let item = document.querySelector(`li[data-name="${CSS.escape(name)}"]`);
  if (!item) {
    item = Object.assign(document.createElement("li"), { className: "upload" });
    item.dataset.name = name;
    document.querySelector("#results").append(item);
  }
  item.textContent = `${name}: ${text}`;
}

/** Uploads the chosen files; resolves with the names Uppy uploaded and those it failed. */
window.uploadWithUppy = async (endpoint, credential) => {
  const uppy = new Uppy().use(AwsS3, {
    endpoint,
    headers: { Authorization: `Bearer ${credential}` },
    shouldUseMultipart: (file) => file.size >= MULTIPART_FROM,
  });
  uppy.on("upload-progress", (file, progress) => {
    show(file.name, `${Math.round((100 * progress.bytesUploaded) / progress.bytesTotal)}%`);
  });
  for (const file of document.querySelector("#files").files) {
    uppy.addFile({ name: file.name, type: file.type, data: file });
  }
  const result = await uppy.upload();
  for (const file of result.successful) show(file.name, "uploaded");
  for (const file of result.failed) show(file.name, `failed: ${file.error}`);
  return {
    successful: result.successful.map((file) => file.name),
    failed: result.failed.map((file) => `${file.name}: ${file.error}`),
  };
};

/** Shows what filepipe says of a file once it is known. */
window.showStatus = (name, status) => show(name, status);

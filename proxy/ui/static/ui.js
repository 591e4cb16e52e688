// Progressive enhancement only: a "Copy" button on every command block. The pages work without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (!navigator.clipboard) return;  // http on another host: the Clipboard API needs a secure context
  for (const box of document.querySelectorAll(".copyable")) {
    const code = box.querySelector("code");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy " + (box.querySelector("pre").getAttribute("aria-label") || "text"));
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(code.textContent);
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
    box.appendChild(button);
  }
});

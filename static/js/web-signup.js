// Agency signup: suggests the address from the agency's name, shows the address as it is typed,
// and says "Creating your agency…" while the form is sent. Without this file the form works alike.
(function () {
  "use strict";
  var form = document.getElementById("signup-form");
  if (!form) return;
  var name = form.querySelector("#id_name");
  var slug = form.querySelector("#id_slug");
  var preview = form.querySelector("[data-slug-preview]");
  var button = form.querySelector("[data-submit]");
  var progress = form.querySelector("[data-progress]");
  var idleLabel = button.textContent;
  // Once someone types an address themselves, the name no longer changes it.
  var slugChosen = slug.value.trim() !== "";

  function slugify(text) {
    return text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-+/, "")
      .slice(0, 40)
      .replace(/-+$/, "");
  }

  function showPreview() {
    preview.textContent = slug.value.trim().toLowerCase() || preview.dataset.placeholder;
  }

  function idle() {
    button.disabled = false;
    button.textContent = idleLabel;
    form.removeAttribute("aria-busy");
    progress.hidden = true;
  }

  slug.addEventListener("input", function () {
    slugChosen = slug.value.trim() !== "";
    showPreview();
  });
  name.addEventListener("input", function () {
    if (!slugChosen) {
      slug.value = slugify(name.value);
      showPreview();
    }
  });
  form.addEventListener("submit", function () {
    // The submission is under way: disabling the button now only prevents a second agency.
    button.disabled = true;
    button.textContent = "Creating your agency…";
    form.setAttribute("aria-busy", "true");
    progress.hidden = false;
  });
  // Coming back with the Back button shows the form as it was, not stuck "creating".
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) idle();
  });
  // A name typed before this file ran (a slow connection) still suggests the address.
  if (!slugChosen && name.value.trim() !== "") slug.value = slugify(name.value);
  showPreview();
})();

/* The composer's enhancements: TikTok's audit rules as you type, the upload with a real
   progress bar, and the preview. Everything here is also enforced by the server; without
   JavaScript the form still works (the file goes with the form, errors come back with it). */
(function () {
  "use strict";

  var DISCLOSURE_NEEDS_A_BRAND =
    "You need to indicate if your content promotes yourself, a third party, or both.";
  var BRANDED_CONTENT_NOT_PRIVATE = "Branded content visibility cannot be set to private.";

  function init() {
    var form = document.getElementById("composer");
    if (!form) return;
    var captionMax = parseInt(form.getAttribute("data-caption-max"), 10) || 2200;
    var uploading = false;

    function byId(id) { return document.getElementById(id); }
    function checked(id) { var el = byId(id); return !!(el && el.checked); }

    // Text is only written when it changes. A write that changes nothing still mutates the page,
    // and Chromium's scroll anchoring then scrolls toward the focused field: on a phone, the
    // "change" that fires as "Publish now" is pressed (leaving a field scrolled out of view)
    // moved the page between press and release, and the click landed elsewhere.
    function setText(el, text) {
      if (el && el.textContent !== text) el.textContent = text;
    }

    function setHidden(el, hidden) {
      if (el && el.hidden !== hidden) el.hidden = hidden;
    }

    function setDisabled(el, disabled) {
      if (el && el.disabled !== disabled) el.disabled = disabled;
    }

    // An error the script wrote (data-client) is rewritten on every check; one the server
    // wrote stays until the person changes that field.
    function setClientError(el, message) {
      if (!el) return;
      if (message) {
        setText(el, message);
        setHidden(el, false);
        if (!el.hasAttribute("data-client")) el.setAttribute("data-client", "1");
      } else if (el.hasAttribute("data-client")) {
        el.textContent = "";
        el.hidden = true;
        el.removeAttribute("data-client");
      }
    }

    function clearServerError(field) {
      var wrapper = field.closest(".field, .check-row");
      if (!wrapper) return;
      var errors = wrapper.querySelectorAll(".field-error");
      for (var i = 0; i < errors.length; i++) {
        if (!errors[i].hasAttribute("data-client") && errors[i].id !== "video-error" && errors[i].id !== "photos-error") {
          setText(errors[i], "");
          setHidden(errors[i], true);
        }
      }
    }

    function refresh() {
      var caption = byId("id_caption");
      var used = caption ? caption.value.length : 0; // JS strings count UTF-16 code units, as TikTok does
      var usedEl = byId("caption-used");
      setText(usedEl, used.toLocaleString("en"));
      var over = used > captionMax;
      byId("caption-count").classList.toggle("over", over);
      setClientError(byId("caption-error"), over
        ? "The caption is " + used.toLocaleString("en") + " characters long as TikTok counts them (emoji count as two); TikTok allows at most " + captionMax.toLocaleString("en") + "."
        : "");

      var disclosure = checked("id_commercial_disclosure");
      var own = checked("id_brand_organic");
      var branded = disclosure && checked("id_brand_content");
      setHidden(byId("disclosure-brands"), !disclosure);
      var needsBrand = disclosure && !own && !branded;
      setClientError(byId("commercial_disclosure-error"), needsBrand ? DISCLOSURE_NEEDS_A_BRAND : "");

      var privacy = byId("id_privacy_level");
      var brandedPrivate = false;
      if (privacy) {
        brandedPrivate = branded && privacy.value === "SELF_ONLY";
        var selfOnly = privacy.querySelector("option[value='SELF_ONLY']");
        // TikTok's guideline: with branded content, "Only me" is greyed out.
        if (selfOnly) setDisabled(selfOnly, branded && !selfOnly.selected);
        setClientError(byId("privacy_level-error"), brandedPrivate ? BRANDED_CONTENT_NOT_PRIVATE : "");
      }

      var consent = byId("consent");
      setText(consent, consent.getAttribute(branded ? "data-branded" : "data-plain"));

      var creator = byId("creator-info");
      var canPost = !!creator && creator.getAttribute("data-can-post") === "true";
      var account = byId("id_account");
      var blockedAll = needsBrand || brandedPrivate || over || uploading;
      var reasons = [];
      if (uploading) reasons.push("Wait for the upload to finish.");
      if (needsBrand) reasons.push(DISCLOSURE_NEEDS_A_BRAND);
      if (brandedPrivate) reasons.push(BRANDED_CONTENT_NOT_PRIVATE);
      if (over) reasons.push("Shorten the caption.");
      if (!canPost && !blockedAll) {
        reasons.push(account && account.value
          ? "This account cannot publish right now (see above); you can save a draft."
          : "Choose an account to schedule or publish.");
      }
      // Posts that wait for approval go out at a time chosen ahead: the creator fragment of the
      // chosen account says so (data-now-unavailable), and Publish now is off with that reason.
      var nowUnavailable = creator ? creator.getAttribute("data-now-unavailable") || "" : "";
      var nowNote = byId("now-unavailable");
      if (nowNote.textContent !== nowUnavailable) {
        // The server's refusal (a field error, the same words) stays while it is about this account.
        nowNote.textContent = nowUnavailable;
        nowNote.className = "notice";
      }
      setHidden(nowNote, !nowUnavailable);
      setDisabled(byId("btn-draft"), blockedAll);
      setDisabled(byId("btn-default"), blockedAll);
      setDisabled(byId("btn-schedule"), blockedAll || !canPost);
      setDisabled(byId("btn-queue"), blockedAll || !canPost);
      setDisabled(byId("btn-now"), blockedAll || !canPost || !!nowUnavailable);
      var blocked = byId("publish-blocked");
      setText(blocked, reasons.join(" "));
      setHidden(blocked, reasons.length === 0);

      setText(byId("preview-account"), creator ? (creator.getAttribute("data-nickname") || "") : "");
      setText(byId("preview-caption"), caption ? caption.value : "");
      refreshPhotos();
    }

    // A photo post's preview: its photos in order (the server sends them with every carousel
    // change), the cover marked, the caption as its title and the description under it.
    function refreshPhotos() {
      var chosenType = form.querySelector("input[name=media_type]:checked");
      var photoMode = !!chosenType && chosenType.value === "photo";
      var phone = byId("preview-phone");
      var mediaType = photoMode ? "photo" : "video";
      if (phone && phone.getAttribute("data-media-type") !== mediaType) phone.setAttribute("data-media-type", mediaType);
      setHidden(byId("preview-video-part"), photoMode);
      // TikTok has no duet or stitch for photos (and they are never sent for them).
      var videoOnly = form.querySelectorAll("[data-video-only]");
      for (var k = 0; k < videoOnly.length; k++) setHidden(videoOnly[k], photoMode);
      setHidden(byId("preview-photo-part"), !photoMode);
      var description = byId("id_description");
      setText(byId("preview-description"), description ? description.value : "");
      setHidden(byId("preview-description"), !photoMode);
      var cover = form.querySelector("input[name=photo_cover]:checked");
      var coverId = cover ? cover.value : "";
      var shown = document.querySelectorAll("#preview-photos li[data-photo]");
      for (var i = 0; i < shown.length; i++) {
        shown[i].classList.toggle("is-cover", shown[i].getAttribute("data-photo") === coverId);
      }
      var items = document.querySelectorAll("#carousel-list .carousel-item");
      for (var j = 0; j < items.length; j++) {
        var id = items[j].querySelector("input[name=photo_ids]");
        items[j].classList.toggle("is-cover", !!id && id.value === coverId);
      }
    }

    function showPreview() {
      var summary = byId("media-summary");
      var video = byId("preview-video");
      if (!summary || !video) return;
      var src = summary.getAttribute("data-preview-src");
      if (video.getAttribute("src") !== src) video.setAttribute("src", src);
      video.hidden = false;
      byId("preview-empty").hidden = true;
    }

    // --- Upload with progress (htmx has no upload progress) ---
    var fileInput = byId("id_video");
    var progressBox = byId("upload-progress");
    var bar = byId("upload-bar");
    var statusText = byId("upload-status");
    var lastAnnounced = -1;

    function setProgress(fraction) {
      var percent = Math.floor(fraction * 100);
      bar.value = percent;
      // Announce in steps of 10 %, not on every event.
      var step = Math.floor(percent / 10) * 10;
      if (step !== lastAnnounced) {
        lastAnnounced = step;
        statusText.textContent = "Uploading: " + step + " %";
      }
    }

    function uploadError(message) {
      var error = byId("video-error");
      error.textContent = message;
      error.hidden = false;
    }

    function upload(file) {
      var data = new FormData();
      var token = form.querySelector("input[name=csrfmiddlewaretoken]").value;
      data.append("video", file, file.name);
      data.append("account", byId("id_account").value);
      data.append("csrfmiddlewaretoken", token);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.getAttribute("data-upload-url"));
      xhr.setRequestHeader("X-CSRFToken", token);
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) setProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", function () {
        uploading = false;
        fileInput.value = ""; // the form must not send the file again
        var answer = document.createElement("template");
        answer.innerHTML = xhr.responseText;
        var slot = byId("media-slot");
        var fragmentError = answer.content.querySelector("#video-error");
        if (answer.content.querySelector("input[name=media_id]")) {
          slot.replaceChildren(answer.content);
          bar.value = 100;
          statusText.textContent = "Uploaded.";
          showPreview();
        } else if (fragmentError) {
          byId("video-error").replaceWith(fragmentError);
          progressBox.hidden = true;
          statusText.textContent = "";
        } else {
          progressBox.hidden = true;
          uploadError("The upload did not complete (HTTP " + xhr.status + "). Try again; if it keeps failing, reload the page.");
        }
        refresh();
      });
      xhr.addEventListener("error", function () {
        uploading = false;
        progressBox.hidden = true;
        uploadError("The upload failed: check your connection and try again.");
        refresh();
      });
      uploading = true;
      lastAnnounced = -1;
      bar.value = 0;
      progressBox.hidden = false;
      setProgress(0);
      var error = byId("video-error");
      error.textContent = "";
      error.hidden = true;
      refresh();
      xhr.send(data);
    }

    if (fileInput && window.FormData && window.XMLHttpRequest) {
      fileInput.addEventListener("change", function () {
        if (fileInput.files && fileInput.files.length) upload(fileInput.files[0]);
      });
    }

    form.addEventListener("input", function (event) {
      if (event.target.id === "id_caption" || event.target.id === "id_description") clearServerError(event.target);
      refresh();
    });
    form.addEventListener("change", function (event) {
      if (event.target !== fileInput) clearServerError(event.target);
      refresh();
    });
    // After the creator fragment or the carousel is swapped in (refresh writes only what changed).
    document.body.addEventListener("htmx:afterSettle", refresh);

    refresh();
    showPreview();
    // After a refused submit, take keyboard and screen-reader users to the first problem.
    if (byId("form-errors")) {
      var firstError = form.querySelector(".field-error:not([hidden])");
      var wrapper = firstError && firstError.closest(".field, .check-row");
      var target = wrapper && wrapper.querySelector("input:not([type=hidden]):not([disabled]), select, textarea");
      if (target) target.focus();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

/* The composer's caption templates and hashtag groups: the chosen one goes into the caption at
   the cursor (replacing a selection), then an input event lets the composer recount the caption
   (UTF-16 code units, as TikTok counts) and refresh the preview. Those for another client than the
   chosen account's are not offered. */
(function () {
  "use strict";

  function init() {
    var menu = document.getElementById("caption-insert");
    var caption = document.getElementById("id_caption");
    var select = document.getElementById("caption-snippet");
    var button = document.getElementById("caption-insert-button");
    var account = document.getElementById("id_account");
    if (!menu || !caption || !select || !button || typeof caption.setRangeText !== "function") return;
    menu.hidden = false;

    function clientOfAccount() {
      var option = account && account.selectedOptions ? account.selectedOptions[0] : null;
      return option ? option.getAttribute("data-client") || "" : "";
    }

    function offerForAccount() {
      var client = clientOfAccount();
      for (var i = 0; i < select.options.length; i++) {
        var option = select.options[i];
        var own = option.getAttribute("data-client");
        var offered = !own || own === client;
        option.hidden = !offered;
        option.disabled = !offered;
        if (!offered && option.selected) select.value = "";
      }
    }

    button.addEventListener("click", function () {
      var option = select.selectedOptions ? select.selectedOptions[0] : null;
      var text = option ? option.getAttribute("data-text") : "";
      if (!text) return;
      var start = caption.selectionStart, end = caption.selectionEnd;
      var value = caption.value;
      // Keep words apart: a space before and after unless there is one (or a line break) already.
      if (start > 0 && !/\s/.test(value.charAt(start - 1))) text = " " + text;
      if (end < value.length && !/\s/.test(value.charAt(end))) text = text + " ";
      caption.setRangeText(text, start, end, "end");
      caption.focus();
      caption.dispatchEvent(new Event("input", { bubbles: true }));
      select.value = "";
    });

    if (account) account.addEventListener("change", offerForAccount);
    offerForAccount();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

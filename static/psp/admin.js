// Admin panel: copy buttons and the live preview of the payment page. Text only (textContent):
// nothing typed by the merchant is ever interpreted as HTML.
(function () {
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.querySelector(button.getAttribute("data-copy"));
      if (!field) return;
      var done = function () {
        var label = button.textContent;
        button.textContent = button.getAttribute("data-copied") || label;
        setTimeout(function () { button.textContent = label; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () { field.select(); document.execCommand("copy"); done(); });
      } else { field.select(); document.execCommand("copy"); done(); }
    });
  });

  var preview = document.getElementById("preview");
  if (!preview) return;
  var hex = /^#[0-9a-fA-F]{6}$/;
  document.querySelectorAll("[data-preview]").forEach(function (input) {
    var key = input.getAttribute("data-preview");
    var update = function () {
      if (key === "color") {
        if (hex.test(input.value)) {
          preview.style.setProperty("--psp-primary", input.value);
          var picker = document.querySelector('[data-color-for="' + input.name + '"]');
          if (picker) picker.value = input.value.toLowerCase();
        }
        return;
      }
      var target = preview.querySelector('[data-preview-target="' + key + '"]');
      if (target) target.textContent = input.value;
    };
    input.addEventListener("input", update);
  });
  document.querySelectorAll("[data-color-for]").forEach(function (picker) {
    var text = document.querySelector('input[name="' + picker.getAttribute("data-color-for") + '"]');
    picker.addEventListener("input", function () {
      if (!text) return;
      text.value = picker.value;
      text.dispatchEvent(new Event("input"));
    });
  });
})();

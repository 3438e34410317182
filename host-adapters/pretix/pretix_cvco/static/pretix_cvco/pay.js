// Back to the pretix order page once the payment is decided: pretix shows what is paid and,
// after a partial authorization, offers another payment method for the remainder.
const box = document.getElementById("cvco-pay");
if (box) {
  const back = () => { window.location.href = box.dataset.orderUrl; };
  for (const name of ["cvco-authorized", "cvco-partially-authorized"]) {
    box.addEventListener(name, () => setTimeout(back, 1500));
  }
}

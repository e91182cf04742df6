"""What the tests share: fakes of the outside world, lab helpers, and where the checkout keeps things."""

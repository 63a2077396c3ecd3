"""HTTP fakes of calendar services, served for real on 127.0.0.1 so client libraries
run unmodified and tests can assert on the requests they receive."""

-- The 不动产登记中心's own database the property connector polls (simulated beside the exchange's).
CREATE DATABASE registry OWNER exchange;

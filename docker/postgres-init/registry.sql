-- The 不动产登记中心's own database the property connector polls (simulated beside the exchange's).
CREATE DATABASE registry OWNER exchange;
-- Its table, empty until the registry fills it, so the property connector polls from the start
-- rather than fail (and be restarted) until then. As the registry's samples create it.
\connect registry
CREATE TABLE IF NOT EXISTS bdc_djb (bdcqzh text PRIMARY KEY, bdcdyh char(28) NOT NULL, qlr text NOT NULL, zl text, xzqdm char(6) NOT NULL, yt text NOT NULL, mj numeric(12,2) NOT NULL, djsj timestamp NOT NULL, qszt char(1) NOT NULL, dyzt char(1) NOT NULL, cfzt char(1) NOT NULL, bbh integer NOT NULL, gxsj timestamp NOT NULL);

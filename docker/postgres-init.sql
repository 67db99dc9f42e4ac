-- One database per service that keeps its data in PostgreSQL (no service reads another's tables).
CREATE DATABASE shop_user OWNER shop;
CREATE DATABASE shop_payment OWNER shop;

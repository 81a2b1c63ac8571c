-- Maxwell 1.45's state tables, as a take-over finds them in schema_database.
-- Written for sluice's tests from the column lists of sluice's compatibility
-- specification (maxwell-compat.md §7 and §2.1); not copied from Maxwell. Where
-- the specification gives no type, the type is a plausible one (see README.md).
-- Run with the schema database as the default database.

CREATE TABLE IF NOT EXISTS `positions` (
  server_id int unsigned not null,
  binlog_file varchar(255),
  binlog_position int unsigned,
  gtid_set varchar(4096),
  client_id varchar(255) charset latin1 not null default 'maxwell',
  heartbeat_at bigint null default null,
  last_heartbeat_read bigint null default null,
  primary key(server_id, client_id)
);

CREATE TABLE IF NOT EXISTS `heartbeats` (
  server_id int unsigned not null,
  client_id varchar(255) charset latin1 not null default 'maxwell',
  heartbeat bigint not null,
  primary key(server_id, client_id)
);

CREATE TABLE IF NOT EXISTS `schemas` (
  id int unsigned auto_increment not null primary key,
  binlog_file varchar(255),
  binlog_position int unsigned,
  last_heartbeat_read bigint null default 0,
  gtid_set varchar(4096),
  base_schema_id int unsigned null default null,
  deltas mediumtext charset utf8mb4 null default null,
  server_id int unsigned,
  position_sha char(40) charset latin1 default null,
  charset varchar(255),
  version smallint unsigned not null default 0,
  deleted tinyint(1) not null default 0,
  unique key (position_sha)
);

CREATE TABLE IF NOT EXISTS `databases` (
  id int unsigned auto_increment not null primary key,
  schema_id int unsigned,
  name varchar(255) charset utf8mb4,
  charset varchar(255),
  index (schema_id)
);

CREATE TABLE IF NOT EXISTS `tables` (
  id int unsigned auto_increment not null primary key,
  schema_id int unsigned,
  database_id int unsigned,
  name varchar(255) charset utf8mb4,
  charset varchar(255),
  pk varchar(1024) charset utf8mb4,
  index (schema_id),
  index (database_id)
);

CREATE TABLE IF NOT EXISTS `columns` (
  id int unsigned auto_increment not null primary key,
  schema_id int unsigned,
  table_id int unsigned,
  name varchar(255) charset utf8mb4,
  charset varchar(255),
  coltype varchar(255),
  is_signed tinyint(1) unsigned,
  enum_values text charset utf8mb4,
  column_length tinyint unsigned,
  index (schema_id),
  index (table_id)
);

CREATE TABLE IF NOT EXISTS `bootstrap` (
  id bigint auto_increment not null primary key,
  database_name varchar(255) charset utf8 not null,
  table_name varchar(255) charset utf8 not null,
  where_clause text default null,
  is_complete tinyint(1) unsigned not null default 0,
  inserted_rows bigint(20) unsigned not null default 0,
  total_rows bigint(20) unsigned not null default 0,
  created_at datetime default null,
  started_at datetime default null,
  completed_at datetime default null,
  binlog_file varchar(255) default null,
  binlog_position int unsigned default 0,
  client_id varchar(255) charset latin1 not null default 'maxwell',
  comment varchar(255) charset utf8 default null
);

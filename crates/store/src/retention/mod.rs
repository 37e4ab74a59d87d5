//! Retention: the holds that keep a day from `gc` (a shipper that has not finished it, an
//! operator's hold). `gc` itself is [`LogStore::gc`](crate::LogStore::gc).

pub(crate) mod holds;

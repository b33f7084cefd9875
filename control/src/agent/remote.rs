//! The remote model source: follows another host's tenant API over HTTP (see [`super::source`]
//! for the contract every source keeps).

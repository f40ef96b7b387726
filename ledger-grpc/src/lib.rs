pub mod bench;
pub mod pb;

fn main() { println!("loadtest: not yet implemented"); }

//! TEST FIXTURE, NOT AN EXAMPLE. A valid component of another world
//! (`wit/other.wit`): it exports `greet`, not `evaluate`. The runtime must
//! refuse it at load time.

wit_bindgen::generate!({
    path: "wit",
    world: "greeter",
});

struct Greeter;

impl Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Greeter);

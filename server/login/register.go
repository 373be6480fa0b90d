package login

// PathRegister is the registration page.
const PathRegister = "/register"

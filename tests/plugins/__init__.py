"""Third-party-style plugins the tests register, one throwaway registration per test."""

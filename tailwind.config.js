/** Tailwind v3: dx runs it with tailwind.css as input and writes assets/tailwind.css. */
module.exports = {
  content: ["./src/**/*.rs"],
  theme: { extend: {} },
  plugins: [],
};

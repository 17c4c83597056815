// Express 4 is installed under the alias `express4` to test both majors; its API for what the tests
// use (app, routes, listen) is the same shape as Express 5's.
declare module 'express4' {
  import express from 'express';
  export default express;
}

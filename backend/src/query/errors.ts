/** A query the caller got wrong: the message names the field and goes back to the client as is. */
export class QueryError extends Error {
  constructor(
    message: string,
    readonly statusCode: 400 | 404 = 400,
  ) {
    super(message);
    this.name = 'QueryError';
  }
}

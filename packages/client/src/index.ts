export { SluiceClient, SluiceApiError, type ClientOptions, type NewPayment, type Payment } from './client.ts';
export { verifyWebhook, WebhookVerificationError, type HeadersLike, type WebhookEvent } from './verify.ts';

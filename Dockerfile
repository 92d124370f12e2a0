# One image for every Sluice process; docker-compose picks the entry point per service.
FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json turbo.json tsconfig.json ./
COPY apps ./apps
COPY packages ./packages
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund
USER node
CMD ["node", "--import", "tsx", "apps/api/src/main.ts"]
